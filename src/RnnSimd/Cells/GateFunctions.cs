using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.Cells;

/// <summary>
/// Where a cell specialisation's gate functions come from: compiled in (PyTorch's σ and tanh, no clip; the default and
/// the fast path) or read at run time from <see cref="GateFunctions"/> (ONNX's activations and clip). A constant of a
/// struct type argument, so the JIT compiles the two apart and the default code carries no trace of the other.
/// </summary>
internal interface IGateVariant
{
    /// <summary>True: the activations, the clip (and an LSTM's peepholes and coupled gates) are read at run time.</summary>
    static abstract bool Configured { get; }
}

/// <summary>The cell's default gate functions, compiled in.</summary>
internal readonly struct CompiledGates : IGateVariant
{
    public static bool Configured => false;
}

/// <summary>
/// Gate functions read at run time (<see cref="GateFunctions"/>). Also the RNN's activation type argument for its
/// configured specialisation (<see cref="RnnCell{TAct}"/>), where it is never invoked: the kernels branch on the type.
/// </summary>
internal readonly struct ConfiguredGates : IGateVariant, IActivation
{
    public static bool Configured => true;

    public static float Invoke(float x) => throw new UnreachableException();
    public static Vector256<float> Invoke(Vector256<float> x) => throw new UnreachableException();
    public static Vector512<float> Invoke(Vector512<float> x) => throw new UnreachableException();
    public static float Backward(float y, float dy) => throw new UnreachableException();
    public static Vector256<float> Backward(Vector256<float> y, Vector256<float> dy) => throw new UnreachableException();
    public static Vector512<float> Backward(Vector512<float> y, Vector512<float> dy) => throw new UnreachableException();
}

/// <summary>
/// The gate functions a configured cell reads at run time (<see cref="LayerWeights.Functions"/>, from the options):
/// ONNX's activations f, g, h, the clip bound, and the LSTM's coupled input and forget gates.
/// </summary>
internal struct GateFunctions
{
    public GateActivation F, G, H;  // LSTM: f for i, f, o; g for the candidate; h of c. GRU: f for r, z; g for n. RNN: f.
    public bool Coupled;            // LSTM: f = 1 - i
    public float Bound;             // pre-activations are clamped to [-Bound, Bound]: the clip, or +Inf for none (the clamp is then the identity)

    public static GateFunctions From(RecurrentOptions o)
    {
        var (f, g, h) = o.Activations;
        return new GateFunctions { F = f, G = g, H = h, Coupled = o.CoupledInputForget, Bound = o.Clip > 0 ? o.Clip : float.PositiveInfinity };
    }
}

/// <summary>
/// The pieces of a configured gate kernel, for every lane width: an activation chosen at run time (one branch on a field
/// per vector; each branch is the op the compiled kernels use, so with σ and tanh the results are theirs), the clamp, and
/// the clamp's gradient from the recorded pre-activation.
/// </summary>
internal static unsafe class Gate
{
    /// <summary>
    /// One gate: records the pre-activation <paramref name="a"/> at pre[i] when <paramref name="pre"/> is not null (a training
    /// forward with a clip), then returns act(clamp(a)).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Forward<TL, TV>(GateActivation act, TV a, float bound, float* pre, nuint i) where TL : ILanes<TV> where TV : struct
    {
        if (pre != null) TL.Store(a, pre, i);
        return Activate<TL, TV>(act, TL.Min(TL.Max(a, TL.Splat(-bound)), TL.Splat(bound)));
    }

    /// <summary>act(x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Activate<TL, TV>(GateActivation act, TV x) where TL : ILanes<TV> where TV : struct =>
        act == GateActivation.Sigmoid ? TL.Apply<SigmoidOp>(x) : act == GateActivation.Tanh ? TL.Apply<TanhOp>(x) : TL.Apply<ReluOp>(x);

    /// <summary>
    /// dL/d(pre-activation) of a gate from its output y and dL/dy: the activation's own Backward, then zero where the
    /// recorded pre-activation lay beyond the clip (<paramref name="pre"/> null: no clip).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Backward<TL, TV>(GateActivation act, TV y, TV dy, float bound, float* pre, nuint i) where TL : ILanes<TV> where TV : struct
    {
        TV d = act == GateActivation.Sigmoid ? TL.Backward<SigmoidOp>(y, dy)
            : act == GateActivation.Tanh ? TL.Backward<TanhOp>(y, dy)
            : TL.Backward<ReluOp>(y, dy);
        return pre == null ? d : TL.Apply<ClampGradientOp>(d, TL.Load(pre, i), TL.Splat(bound));
    }

    /// <summary>
    /// act'(x) from y = act(x): y (1 - y), 1 - y^2 (as FMA(0 - y, y, 1), the compiled LSTM's expression for tanh c), or
    /// 1 / 0 where y &gt; 0 / not. For the LSTM's h(c), whose argument is never clipped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Slope<TL, TV>(GateActivation act, TV y) where TL : ILanes<TV> where TV : struct
    {
        TV one = TL.Splat(1f);
        return act == GateActivation.Sigmoid ? TL.Mul(y, TL.Sub(one, y))
            : act == GateActivation.Tanh ? TL.Fma(TL.Sub(TL.Splat(0f), y), y, one)
            : TL.Backward<ReluOp>(y, one);
    }
}
