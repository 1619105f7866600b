using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RnnSimd.Kernels;

/// <summary>
/// Element-wise drivers, generic over an op so the JIT specialises and inlines it.
/// Tail policy (one for the whole family): the last full vector overlaps the previous one; its inputs are loaded
/// before the main loop writes anything, so same-start in-place calls (destination == source) are safe.
/// Lengths below one vector fall to the next narrower width, then to scalar code.
/// Partially overlapping source and destination (other than same start) are not supported.
/// </summary>
internal static class ElementWise
{
    public static void Map<TOp>(KernelIsa isa, ReadOnlySpan<float> x, Span<float> dst) where TOp : IUnaryOp
    {
        ThrowHelper.CheckLength(dst.Length, x.Length, nameof(dst), "x.Length");
        int n = x.Length;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ds = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (isa == KernelIsa.Avx512 && n >= Vector512<float>.Count)
        {
            int last = n - Vector512<float>.Count;
            var tail = Vector512.LoadUnsafe(ref xs, (nuint)last);
            for (; i < last; i += Vector512<float>.Count)
                TOp.Invoke(Vector512.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            TOp.Invoke(tail).StoreUnsafe(ref ds, (nuint)last);
            return;
        }
        if (isa >= KernelIsa.Avx2 && n >= Vector256<float>.Count)
        {
            int last = n - Vector256<float>.Count;
            var tail = Vector256.LoadUnsafe(ref xs, (nuint)last);
            for (; i < last; i += Vector256<float>.Count)
                TOp.Invoke(Vector256.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            TOp.Invoke(tail).StoreUnsafe(ref ds, (nuint)last);
            return;
        }
        for (; i < n; i++) Unsafe.Add(ref ds, i) = TOp.Invoke(Unsafe.Add(ref xs, i));
    }

    public static void Map<TOp>(KernelIsa isa, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dst)
        where TOp : IBinaryOp
    {
        ThrowHelper.CheckLength(y.Length, x.Length, nameof(y), "x.Length");
        ThrowHelper.CheckLength(dst.Length, x.Length, nameof(dst), "x.Length");
        int n = x.Length;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        ref float ds = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (isa == KernelIsa.Avx512 && n >= Vector512<float>.Count)
        {
            int last = n - Vector512<float>.Count;
            var tx = Vector512.LoadUnsafe(ref xs, (nuint)last);
            var ty = Vector512.LoadUnsafe(ref ys, (nuint)last);
            for (; i < last; i += Vector512<float>.Count)
                TOp.Invoke(Vector512.LoadUnsafe(ref xs, (nuint)i), Vector512.LoadUnsafe(ref ys, (nuint)i))
                    .StoreUnsafe(ref ds, (nuint)i);
            TOp.Invoke(tx, ty).StoreUnsafe(ref ds, (nuint)last);
            return;
        }
        if (isa >= KernelIsa.Avx2 && n >= Vector256<float>.Count)
        {
            int last = n - Vector256<float>.Count;
            var tx = Vector256.LoadUnsafe(ref xs, (nuint)last);
            var ty = Vector256.LoadUnsafe(ref ys, (nuint)last);
            for (; i < last; i += Vector256<float>.Count)
                TOp.Invoke(Vector256.LoadUnsafe(ref xs, (nuint)i), Vector256.LoadUnsafe(ref ys, (nuint)i))
                    .StoreUnsafe(ref ds, (nuint)i);
            TOp.Invoke(tx, ty).StoreUnsafe(ref ds, (nuint)last);
            return;
        }
        for (; i < n; i++) Unsafe.Add(ref ds, i) = TOp.Invoke(Unsafe.Add(ref xs, i), Unsafe.Add(ref ys, i));
    }

    public static void Map<TOp>(KernelIsa isa, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> z,
        Span<float> dst) where TOp : ITernaryOp
    {
        ThrowHelper.CheckLength(y.Length, x.Length, nameof(y), "x.Length");
        ThrowHelper.CheckLength(z.Length, x.Length, nameof(z), "x.Length");
        ThrowHelper.CheckLength(dst.Length, x.Length, nameof(dst), "x.Length");
        int n = x.Length;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        ref float zs = ref MemoryMarshal.GetReference(z);
        ref float ds = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (isa == KernelIsa.Avx512 && n >= Vector512<float>.Count)
        {
            int last = n - Vector512<float>.Count;
            var tx = Vector512.LoadUnsafe(ref xs, (nuint)last);
            var ty = Vector512.LoadUnsafe(ref ys, (nuint)last);
            var tz = Vector512.LoadUnsafe(ref zs, (nuint)last);
            for (; i < last; i += Vector512<float>.Count)
                TOp.Invoke(Vector512.LoadUnsafe(ref xs, (nuint)i), Vector512.LoadUnsafe(ref ys, (nuint)i),
                    Vector512.LoadUnsafe(ref zs, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            TOp.Invoke(tx, ty, tz).StoreUnsafe(ref ds, (nuint)last);
            return;
        }
        if (isa >= KernelIsa.Avx2 && n >= Vector256<float>.Count)
        {
            int last = n - Vector256<float>.Count;
            var tx = Vector256.LoadUnsafe(ref xs, (nuint)last);
            var ty = Vector256.LoadUnsafe(ref ys, (nuint)last);
            var tz = Vector256.LoadUnsafe(ref zs, (nuint)last);
            for (; i < last; i += Vector256<float>.Count)
                TOp.Invoke(Vector256.LoadUnsafe(ref xs, (nuint)i), Vector256.LoadUnsafe(ref ys, (nuint)i),
                    Vector256.LoadUnsafe(ref zs, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
            TOp.Invoke(tx, ty, tz).StoreUnsafe(ref ds, (nuint)last);
            return;
        }
        for (; i < n; i++)
            Unsafe.Add(ref ds, i) = TOp.Invoke(Unsafe.Add(ref xs, i), Unsafe.Add(ref ys, i), Unsafe.Add(ref zs, i));
    }

    /// <summary>dx = f'(x) * dy from the saved output y, for an activation.</summary>
    public static void Backward<TAct>(KernelIsa isa, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
        where TAct : IActivation => Map<BackwardOp<TAct>>(isa, y, dy, dx);

    /// <summary>Adapts an activation's backward to the binary driver.</summary>
    private readonly struct BackwardOp<TAct> : IBinaryOp where TAct : IActivation
    {
        public static float Invoke(float y, float dy) => TAct.Backward(y, dy);
        public static Vector256<float> Invoke(Vector256<float> y, Vector256<float> dy) => TAct.Backward(y, dy);
        public static Vector512<float> Invoke(Vector512<float> y, Vector512<float> dy) => TAct.Backward(y, dy);
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
        int n = x.Length;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        if (isa == KernelIsa.Avx512)
        {
            var a = Vector512.Create(alpha);
            for (; i <= n - 16; i += 16)
                Vector512.FusedMultiplyAdd(a, Vector512.LoadUnsafe(ref xs, (nuint)i), Vector512.LoadUnsafe(ref ys, (nuint)i))
                    .StoreUnsafe(ref ys, (nuint)i);
        }
        if (isa >= KernelIsa.Avx2)
        {
            var a = Vector256.Create(alpha);
            for (; i <= n - 8; i += 8)
                Vector256.FusedMultiplyAdd(a, Vector256.LoadUnsafe(ref xs, (nuint)i), Vector256.LoadUnsafe(ref ys, (nuint)i))
                    .StoreUnsafe(ref ys, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref ys, i) = MathF.FusedMultiplyAdd(alpha, Unsafe.Add(ref xs, i), Unsafe.Add(ref ys, i));
    }
}
