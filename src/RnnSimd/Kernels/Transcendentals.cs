using System.Runtime.Intrinsics;

namespace RnnSimd.Kernels;

// PLACEHOLDER: to be replaced by accurate polynomial implementations.

/// <summary>f(x) = tanh(x); f'(x) = 1 - y^2.</summary>
public readonly struct TanhOp : IActivation
{
    /// <inheritdoc />
    public static float Invoke(float x) => MathF.Tanh(x);
    /// <inheritdoc />
    public static Vector256<float> Invoke(Vector256<float> x) => Vector256.Create(MathF.Tanh(x[0]), MathF.Tanh(x[1]), MathF.Tanh(x[2]), MathF.Tanh(x[3]), MathF.Tanh(x[4]), MathF.Tanh(x[5]), MathF.Tanh(x[6]), MathF.Tanh(x[7]));
    /// <inheritdoc />
    public static Vector512<float> Invoke(Vector512<float> x) => Vector512.Create(Invoke(x.GetLower()), Invoke(x.GetUpper()));
    /// <inheritdoc />
    public static float Backward(float y, float dy) => MathF.FusedMultiplyAdd(-y, y, 1f) * dy;
    /// <inheritdoc />
    public static Vector256<float> Backward(Vector256<float> y, Vector256<float> dy) =>
        Vector256.FusedMultiplyAdd(-y, y, Vector256<float>.One) * dy;
    /// <inheritdoc />
    public static Vector512<float> Backward(Vector512<float> y, Vector512<float> dy) =>
        Vector512.FusedMultiplyAdd(-y, y, Vector512<float>.One) * dy;
}

/// <summary>f(x) = 1 / (1 + exp(-x)); f'(x) = y (1 - y).</summary>
public readonly struct SigmoidOp : IActivation
{
    /// <inheritdoc />
    public static float Invoke(float x) => 1f / (1f + MathF.Exp(-x));
    /// <inheritdoc />
    public static Vector256<float> Invoke(Vector256<float> x) => Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-x));
    /// <inheritdoc />
    public static Vector512<float> Invoke(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-x));
    /// <inheritdoc />
    public static float Backward(float y, float dy) => y * (1f - y) * dy;
    /// <inheritdoc />
    public static Vector256<float> Backward(Vector256<float> y, Vector256<float> dy) => y * (Vector256<float>.One - y) * dy;
    /// <inheritdoc />
    public static Vector512<float> Backward(Vector512<float> y, Vector512<float> dy) => y * (Vector512<float>.One - y) * dy;
}
