using System.Runtime.Intrinsics;

namespace RnnSimd.Kernels;

/// <summary>
/// An element-wise function of one float, written once for every width. Implementations must perform the same
/// IEEE operations in the same order at every width (use FMA in the scalar overload where the vector ones do),
/// so that results are bitwise identical across kernel sets. Ops never test the hardware; drivers do.
/// </summary>
public interface IUnaryOp
{
    /// <summary>Scalar form.</summary>
    static abstract float Invoke(float x);
    /// <summary>256-bit form.</summary>
    static abstract Vector256<float> Invoke(Vector256<float> x);
    /// <summary>512-bit form.</summary>
    static abstract Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>An element-wise function of two floats, written once for every width.</summary>
public interface IBinaryOp
{
    /// <summary>Scalar form.</summary>
    static abstract float Invoke(float x, float y);
    /// <summary>256-bit form.</summary>
    static abstract Vector256<float> Invoke(Vector256<float> x, Vector256<float> y);
    /// <summary>512-bit form.</summary>
    static abstract Vector512<float> Invoke(Vector512<float> x, Vector512<float> y);
}

/// <summary>An element-wise function of three floats, written once for every width.</summary>
public interface ITernaryOp
{
    /// <summary>Scalar form.</summary>
    static abstract float Invoke(float x, float y, float z);
    /// <summary>256-bit form.</summary>
    static abstract Vector256<float> Invoke(Vector256<float> x, Vector256<float> y, Vector256<float> z);
    /// <summary>512-bit form.</summary>
    static abstract Vector512<float> Invoke(Vector512<float> x, Vector512<float> y, Vector512<float> z);
}

/// <summary>
/// An activation y = f(x) whose derivative is expressed from the saved forward output:
/// <c>Backward(y, dy)</c> returns dL/dx = f'(x) * dy using only y = f(x).
/// </summary>
public interface IActivation : IUnaryOp
{
    /// <summary>Scalar form of dL/dx from y = f(x) and dL/dy.</summary>
    static abstract float Backward(float y, float dy);
    /// <summary>256-bit form of dL/dx from y = f(x) and dL/dy.</summary>
    static abstract Vector256<float> Backward(Vector256<float> y, Vector256<float> dy);
    /// <summary>512-bit form of dL/dx from y = f(x) and dL/dy.</summary>
    static abstract Vector512<float> Backward(Vector512<float> y, Vector512<float> dy);
}

/// <summary>x + y.</summary>
public readonly struct AddOp : IBinaryOp
{
    /// <inheritdoc />
    public static float Invoke(float x, float y) => x + y;
    /// <inheritdoc />
    public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x + y;
    /// <inheritdoc />
    public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x + y;
}

/// <summary>x - y.</summary>
public readonly struct SubtractOp : IBinaryOp
{
    /// <inheritdoc />
    public static float Invoke(float x, float y) => x - y;
    /// <inheritdoc />
    public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x - y;
    /// <inheritdoc />
    public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x - y;
}

/// <summary>x * y.</summary>
public readonly struct MultiplyOp : IBinaryOp
{
    /// <inheritdoc />
    public static float Invoke(float x, float y) => x * y;
    /// <inheritdoc />
    public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x * y;
    /// <inheritdoc />
    public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x * y;
}

/// <summary>x * y + z, fused (one rounding).</summary>
public readonly struct MultiplyAddOp : ITernaryOp
{
    /// <inheritdoc />
    public static float Invoke(float x, float y, float z) => MathF.FusedMultiplyAdd(x, y, z);
    /// <inheritdoc />
    public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y, Vector256<float> z) =>
        Vector256.FusedMultiplyAdd(x, y, z);
    /// <inheritdoc />
    public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y, Vector512<float> z) =>
        Vector512.FusedMultiplyAdd(x, y, z);
}

/// <summary>
/// The gradient through a clamp to [-bound, bound]: dy where |x| &lt;= bound (the clamp was the identity there), else 0
/// (NaN x gives 0). Invoke(dy, x, bound); exact (a select), so the same at every width.
/// </summary>
internal readonly struct ClampGradientOp : ITernaryOp
{
    public static float Invoke(float dy, float x, float bound) => MathF.Abs(x) <= bound ? dy : 0f;

    public static Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> bound) =>
        Vector256.ConditionalSelect(Vector256.LessThanOrEqual(Vector256.Abs(x), bound), dy, Vector256<float>.Zero);

    public static Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> bound) =>
        Vector512.ConditionalSelect(Vector512.LessThanOrEqual(Vector512.Abs(x), bound), dy, Vector512<float>.Zero);
}
