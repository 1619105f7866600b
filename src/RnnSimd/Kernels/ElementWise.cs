using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RnnSimd.Kernels;

/// <summary>
/// Element-wise drivers, generic over an op so the JIT specialises and inlines it. They run as lane kernels through
/// <see cref="Lanes.For{TK}"/>, the one driver of every fused kernel: the widest vectors first, then one Vector256,
/// then scalar lanes, all performing the same IEEE operations. Same-start in-place calls (destination == source) are
/// safe, since each lane is read before it is written; other partial overlaps are not supported.
/// </summary>
internal static unsafe class ElementWise
{
    private struct Unary<TOp> : ILaneKernel where TOp : IUnaryOp
    {
        public float* X, D;
        public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct => TL.Store(TL.Apply<TOp>(TL.Load(X, j)), D, j);
    }

    private struct Binary<TOp> : ILaneKernel where TOp : IBinaryOp
    {
        public float* X, Y, D;
        public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct =>
            TL.Store(TL.Apply<TOp>(TL.Load(X, j), TL.Load(Y, j)), D, j);
    }

    private struct Ternary<TOp> : ILaneKernel where TOp : ITernaryOp
    {
        public float* X, Y, Z, D;
        public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct =>
            TL.Store(TL.Apply<TOp>(TL.Load(X, j), TL.Load(Y, j), TL.Load(Z, j)), D, j);
    }

    private struct ActivationBackward<TAct> : ILaneKernel where TAct : IActivation
    {
        public float* Y, DY, DX;
        public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct =>
            TL.Store(TL.Backward<TAct>(TL.Load(Y, j), TL.Load(DY, j)), DX, j);
    }

    private struct AxpyKernel : ILaneKernel
    {
        public float* X, Y;
        public float Alpha;
        public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct =>
            TL.Store(TL.Fma(TL.Splat(Alpha), TL.Load(X, j), TL.Load(Y, j)), Y, j);
    }

    public static void Map<TOp>(KernelIsa isa, ReadOnlySpan<float> x, Span<float> dst) where TOp : IUnaryOp
    {
        ThrowHelper.CheckLength(dst.Length, x.Length, nameof(dst), "x.Length");
        fixed (float* px = x, pd = dst)
        {
            var k = new Unary<TOp> { X = px, D = pd };
            Lanes.For(isa, x.Length, ref k);
        }
    }

    public static void Map<TOp>(KernelIsa isa, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dst)
        where TOp : IBinaryOp
    {
        ThrowHelper.CheckLength(y.Length, x.Length, nameof(y), "x.Length");
        ThrowHelper.CheckLength(dst.Length, x.Length, nameof(dst), "x.Length");
        fixed (float* px = x, py = y, pd = dst)
        {
            var k = new Binary<TOp> { X = px, Y = py, D = pd };
            Lanes.For(isa, x.Length, ref k);
        }
    }

    public static void Map<TOp>(KernelIsa isa, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> z,
        Span<float> dst) where TOp : ITernaryOp
    {
        ThrowHelper.CheckLength(y.Length, x.Length, nameof(y), "x.Length");
        ThrowHelper.CheckLength(z.Length, x.Length, nameof(z), "x.Length");
        ThrowHelper.CheckLength(dst.Length, x.Length, nameof(dst), "x.Length");
        fixed (float* px = x, py = y, pz = z, pd = dst)
        {
            var k = new Ternary<TOp> { X = px, Y = py, Z = pz, D = pd };
            Lanes.For(isa, x.Length, ref k);
        }
    }

    /// <summary>dx = f'(x) * dy from the saved output y, for an activation.</summary>
    public static void Backward<TAct>(KernelIsa isa, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
        where TAct : IActivation
    {
        ThrowHelper.CheckLength(dy.Length, y.Length, nameof(dy), "y.Length");
        ThrowHelper.CheckLength(dx.Length, y.Length, nameof(dx), "y.Length");
        fixed (float* py = y, pdy = dy, pdx = dx)
        {
            var k = new ActivationBackward<TAct> { Y = py, DY = pdy, DX = pdx };
            Lanes.For(isa, y.Length, ref k);
        }
    }

    /// <summary>
    /// Sum of x[i]*y[i]. Reduction policy: 16 lanes (two Vector256 or one Vector512, the same lane split) with a
    /// masked-by-zero last block, then a fixed pairwise lane tree; never depends on addresses.
    /// The scalar set follows the same 16-lane split, so dot products are bitwise identical across sets.
    /// </summary>
    public static float Dot(KernelIsa isa, ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        ThrowHelper.CheckLength(y.Length, x.Length, nameof(y), "x.Length");
        int n = x.Length;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int full = n & ~15;
        Span<float> lanes = stackalloc float[16];
        if (isa == KernelIsa.Avx512)
        {
            var acc = Vector512<float>.Zero;
            for (int i = 0; i < full; i += 16)
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref xs, (nuint)i), Vector512.LoadUnsafe(ref ys, (nuint)i), acc);
            acc.CopyTo(lanes);
        }
        else if (isa == KernelIsa.Avx2)
        {
            var lo = Vector256<float>.Zero;
            var hi = Vector256<float>.Zero;
            for (int i = 0; i < full; i += 16)
            {
                lo = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xs, (nuint)i), Vector256.LoadUnsafe(ref ys, (nuint)i), lo);
                hi = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xs, (nuint)(i + 8)), Vector256.LoadUnsafe(ref ys, (nuint)(i + 8)), hi);
            }
            lo.CopyTo(lanes);
            hi.CopyTo(lanes[8..]);
        }
        else
        {
            lanes.Clear();
            for (int i = 0; i < full; i += 16)
                for (int l = 0; l < 16; l++)
                    lanes[l] = MathF.FusedMultiplyAdd(Unsafe.Add(ref xs, i + l), Unsafe.Add(ref ys, i + l), lanes[l]);
        }
        for (int i = full; i < n; i++)
            lanes[i - full] = MathF.FusedMultiplyAdd(Unsafe.Add(ref xs, i), Unsafe.Add(ref ys, i), lanes[i - full]);
        for (int width = 8; width >= 1; width >>= 1)
            for (int l = 0; l < width; l++) lanes[l] += lanes[l + width];
        return lanes[0];
    }

    /// <summary>y += alpha * x (one FMA per element; identical in every set).</summary>
    public static void Axpy(KernelIsa isa, float alpha, ReadOnlySpan<float> x, Span<float> y)
    {
        ThrowHelper.CheckLength(y.Length, x.Length, nameof(y), "x.Length");
        fixed (float* px = x, py = y)
        {
            var k = new AxpyKernel { X = px, Y = py, Alpha = alpha };
            Lanes.For(isa, x.Length, ref k);
        }
    }
}
