using RnnSimd.Kernels;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// A fully connected layer y = x W^T + b, as torch.nn.Linear: weight (out, in) and bias (out), named "weight" and
/// "bias" in <see cref="Parameters"/> (a PyTorch state_dict's names), with <see cref="Gradients"/> of the same layout.
/// Typically the output layer on top of a <see cref="RecurrentNetwork"/>: its (T, B, H) output is (T*B, H) rows.
/// Forward and backward are allocation-free after the first call; after changing parameter values directly, call
/// <see cref="ParametersChanged"/>, which repacks W at once. Calls only read the layer (Backward writes the gradient
/// arena it is given), so threads may share one layer: concurrent <see cref="Forward"/> calls are safe, and concurrent
/// <see cref="Backward"/> calls are safe when each writes its own gradient arena (<see cref="CreateGradients"/>).
/// Changing parameters is not safe while calls run.
/// </summary>
public sealed unsafe class Linear
{
    private readonly float* _w, _b;            // (out, in), (out)
    private readonly int _oW, _oB;            // their offsets in a gradient arena
    private readonly PackedGemmOperand _wT;   // op(B) = W^T (in x out), for the forward x W^T
    private readonly PackedGemmOperand _wN;   // op(B) = W (out x in), for the backward dy W

    /// <summary>Creates a layer with PyTorch's default initialisation U(-1/sqrt(in), 1/sqrt(in)) of weight and bias, from <paramref name="seed"/>.</summary>
    /// <param name="inFeatures">Size of each input row (in).</param>
    /// <param name="outFeatures">Size of each output row (out).</param>
    /// <param name="seed">Seed of the initialisation.</param>
    /// <param name="kernels">The kernel set to compute with; <see cref="KernelSet.Default"/> when null.</param>
    /// <exception cref="ArgumentException">A size is below 1, or the kernel set is not supported here.</exception>
    public Linear(int inFeatures, int outFeatures, ulong seed = 0, KernelSet? kernels = null)
    {
        if (inFeatures < 1) throw new ArgumentOutOfRangeException(nameof(inFeatures), inFeatures, "inFeatures must be at least 1.");
        if (outFeatures < 1) throw new ArgumentOutOfRangeException(nameof(outFeatures), outFeatures, "outFeatures must be at least 1.");
        Kernels = kernels ?? KernelSet.Default;
        if (!Kernels.IsSupported) throw new ArgumentException($"kernel set '{Kernels.Name}' is not supported here.", nameof(kernels));
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Parameters = new Arena([("weight", [outFeatures, inFeatures]), ("bias", [outFeatures])]);
        Gradients = Parameters.CloneLayout();
        _w = Parameters.Pointer("weight");
        _b = Parameters.Pointer("bias");
        _oW = Parameters.Entry("weight").Offset;
        _oB = Parameters.Entry("bias").Offset;
        _wT = Kernels.PackGemmOperand(true, inFeatures, outFeatures, Weight, inFeatures);
        _wN = Kernels.PackGemmOperand(false, outFeatures, inFeatures, Weight, inFeatures);
        ResetParameters(seed);
    }

    /// <summary>Size of each input row (in).</summary>
    public int InFeatures { get; }
    /// <summary>Size of each output row (out).</summary>
    public int OutFeatures { get; }
    /// <summary>The kernel set every call uses.</summary>
    public KernelSet Kernels { get; }
    /// <summary>"weight" (out, in) and "bias" (out).</summary>
    public Arena Parameters { get; }
    /// <summary>Gradients, same layout as <see cref="Parameters"/>; <see cref="Backward"/> accumulates into them.</summary>
    public Arena Gradients { get; }

    /// <summary>Re-initialises weight then bias from U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default), seeded.</summary>
    /// <param name="seed">Seed of the generator (<see cref="Xoshiro"/>).</param>
    public void ResetParameters(ulong seed)
    {
        var rng = new Xoshiro(seed);
        float bound = 1f / MathF.Sqrt(InFeatures);
        foreach (var e in Parameters.Entries)
        {
            var v = Parameters.View(e);
            for (int i = 0; i < v.Length; i++) v[i] = rng.NextFloat(-bound, bound);
        }
        ParametersChanged();
    }

    /// <summary>Call after writing parameter values (an optimizer step does): repacks W now. Not safe while calls run.</summary>
    public void ParametersChanged()
    {
        _wT.Repack(Weight, InFeatures);
        _wN.Repack(Weight, InFeatures);
    }

    private ReadOnlySpan<float> Weight => new(_w, OutFeatures * InFeatures);

    /// <summary>A new zeroed gradient arena of this layer's layout, e.g. one per thread for data-parallel <see cref="Backward"/>.</summary>
    public Arena CreateGradients() => Parameters.CloneLayout();

    /// <summary>Sets every gradient to zero (gradients accumulate across <see cref="Backward"/> calls).</summary>
    public void ZeroGradients() => Gradients.Clear();

    /// <summary>y = x W^T + b, row by row.</summary>
    /// <param name="x">Input, (N, in); must not overlap <paramref name="y"/>.</param>
    /// <param name="rows">N, the number of rows (T*B for a sequence).</param>
    /// <param name="y">Receives the output, (N, out).</param>
    /// <exception cref="ArgumentException">A span's length does not match its shape, or rows is negative.</exception>
    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y)
    {
        int In = InFeatures, Out = OutFeatures;
        ThrowHelper.CheckNonNegative(rows, nameof(rows));
        Shapes.Check(x.Length, nameof(x), "(N, in)", rows, In);
        Shapes.Check(y.Length, nameof(y), "(N, out)", rows, Out);
        var bias = new ReadOnlySpan<float>(_b, Out);
        for (int r = 0; r < rows; r++) bias.CopyTo(y.Slice(r * Out, Out));
        Kernels.Gemm(false, rows, 1f, x, In, _wT, 1f, y, Out); // y = x W^T + y (= b)
    }

    /// <summary>
    /// Backward of <see cref="Forward"/>: ACCUMULATES dW += dy^T x and db += the column sums of dy into
    /// <paramref name="gradients"/> (default <see cref="Gradients"/>), and writes dx = dy W (skipped when
    /// <paramref name="dx"/> is empty).
    /// </summary>
    /// <param name="x">The forward's input, (N, in).</param>
    /// <param name="dy">dL/dy, (N, out).</param>
    /// <param name="rows">N, the number of rows.</param>
    /// <param name="dx">Receives dL/dx, (N, in), or empty to skip; must not overlap <paramref name="dy"/>.</param>
    /// <param name="gradients">Where dW and db accumulate: <see cref="Gradients"/> when null, else an arena of this layer's layout.</param>
    /// <exception cref="ArgumentException">A span's length does not match its shape, rows is negative, or the gradient arena has another layout.</exception>
    public void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, int rows, Span<float> dx, Arena? gradients = null)
    {
        gradients ??= Gradients;
        if (!ReferenceEquals(gradients, Gradients) && !gradients.HasLayoutOf(Parameters))
            throw new ArgumentException("gradients does not have this layer's parameter layout; create it with CreateGradients.", nameof(gradients));
        int In = InFeatures, Out = OutFeatures;
        ThrowHelper.CheckNonNegative(rows, nameof(rows));
        Shapes.Check(x.Length, nameof(x), "(N, in)", rows, In);
        Shapes.Check(dy.Length, nameof(dy), "(N, out)", rows, Out);
        Shapes.Check(dx.Length, nameof(dx), "(N, in)", rows, In, optional: true);

        var dW = gradients.Data.AsSpan(_oW, Out * In);
        var db = gradients.Data.AsSpan(_oB, Out);
        Kernels.Gemm(true, false, Out, In, rows, 1f, dy, Out, x, In, 1f, dW, In); // dW += dy^T x
        for (int r = 0; r < rows; r++) Kernels.Map<AddOp>(db, dy.Slice(r * Out, Out), db);
        if (dx.IsEmpty || rows == 0) return;
        Kernels.Gemm(false, rows, 1f, dy, Out, _wN, 0f, dx, In); // dx = dy W
    }
}
