using System.Runtime.Intrinsics;

namespace RnnSimd.Kernels;

/// <summary>f(x) = x.</summary>
public readonly struct IdentityOp : IActivation
{
    /// <inheritdoc />
    public static float Invoke(float x) => x;
    /// <inheritdoc />
    public static Vector256<float> Invoke(Vector256<float> x) => x;
    /// <inheritdoc />
    public static Vector512<float> Invoke(Vector512<float> x) => x;
    /// <inheritdoc />
    public static float Backward(float y, float dy) => dy;
    /// <inheritdoc />
    public static Vector256<float> Backward(Vector256<float> y, Vector256<float> dy) => dy;
    /// <inheritdoc />
    public static Vector512<float> Backward(Vector512<float> y, Vector512<float> dy) => dy;
}

/// <summary>f(x) = max(x, 0); NaN in gives NaN out; f'(x) = 1 where y &gt; 0, else 0.</summary>
public readonly struct ReluOp : IActivation
{
    /// <inheritdoc />
    public static float Invoke(float x) => x > 0f ? x : (float.IsNaN(x) ? x : 0f);
    /// <inheritdoc />
    public static Vector256<float> Invoke(Vector256<float> x) =>
        Vector256.ConditionalSelect(Vector256.LessThanOrEqual(x, Vector256<float>.Zero), Vector256<float>.Zero, x);
    /// <inheritdoc />
    public static Vector512<float> Invoke(Vector512<float> x) =>
        Vector512.ConditionalSelect(Vector512.LessThanOrEqual(x, Vector512<float>.Zero), Vector512<float>.Zero, x);
    /// <inheritdoc />
    public static float Backward(float y, float dy) => y > 0f ? dy : 0f;
    /// <inheritdoc />
    public static Vector256<float> Backward(Vector256<float> y, Vector256<float> dy) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(y, Vector256<float>.Zero), dy, Vector256<float>.Zero);
    /// <inheritdoc />
    public static Vector512<float> Backward(Vector512<float> y, Vector512<float> dy) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(y, Vector512<float>.Zero), dy, Vector512<float>.Zero);
}
