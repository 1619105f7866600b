using System.Runtime.CompilerServices;

namespace RnnSimd.Kernels;

/// <summary>
/// The right-hand operand op(B) (K x N) of a GEMM, packed once into the micro-kernel's panel layout of one kernel
/// set, for weights reused on every call (for example W^T in a forward X * W^T). <see cref="Repack"/> refreshes the
/// values in place after the weights change, without allocating.
/// </summary>
public sealed unsafe class PackedGemmOperand
{
    private readonly float[] _buffer;

    internal PackedGemmOperand(KernelSet set, bool transpose, int k, int n)
    {
        ThrowHelper.CheckNonNegative(k, nameof(k));
        ThrowHelper.CheckNonNegative(n, nameof(n));
        Set = set;
        Transposed = transpose;
        K = k;
        N = n;
        int nr = Gemm.NR(set.Isa);
        PaddedCols = (n + nr - 1) / nr * nr;
        long floats = (long)PaddedCols * k + 16;
        if (floats > Array.MaxLength) ThrowHelper.Throw(nameof(n), $"packed operand of {k} x {n} is too large.");
        _buffer = GC.AllocateArray<float>((int)floats, pinned: true);
        Pointer = (float*)(((nint)Unsafe.AsPointer(ref _buffer[0]) + 63) & ~(nint)63);
    }

    /// <summary>The kernel set whose panel layout this is.</summary>
    public KernelSet Set { get; }
    /// <summary>Whether the source matrix is stored transposed (N x K row-major) rather than K x N.</summary>
    public bool Transposed { get; }
    /// <summary>Rows of op(B) (the GEMM's k).</summary>
    public int K { get; }
    /// <summary>Columns of op(B) (the GEMM's n).</summary>
    public int N { get; }
    internal int PaddedCols { get; }
    internal float* Pointer { get; }

    /// <summary>Packs new values of the same shape: <paramref name="b"/> is K x N (or N x K when transposed), leading dimension <paramref name="ldb"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="b"/> is too short for the shape.</exception>
    public void Repack(ReadOnlySpan<float> b, int ldb)
    {
        int rows = Transposed ? N : K, cols = Transposed ? K : N;
        Gemm.CheckMatrix(b.Length, rows, cols, ldb, nameof(b), nameof(ldb), Transposed ? "N x K" : "K x N");
        if (K == 0 || N == 0) return;
        int nr = Gemm.NR(Set.Isa);
        fixed (float* pb = b)
        {
            for (int pc = 0; pc < K; pc += Gemm.KBlock)
            {
                int kc = Math.Min(Gemm.KBlock, K - pc);
                Gemm.PackB(Transposed, pb, ldb, pc, 0, kc, N, nr, Pointer + (nint)pc * PaddedCols);
            }
        }
    }
}

/// <summary>
/// A matrix W (rows x cols) packed for batch-1 matrix-vector products: tiles of <see cref="TileRows"/> rows, each
/// stored column by column (16 contiguous floats per column), the last tile zero-padded. The kernel broadcasts
/// x[k] and multiplies whole tile columns, so it needs no horizontal sums. The layout is the same for every kernel set.
/// </summary>
public sealed unsafe class PackedGemvMatrix
{
    /// <summary>Rows per tile (one Vector512, two Vector256).</summary>
    public const int TileRows = 16;
    private readonly float[] _buffer;

    /// <summary>Allocates a packed matrix of the given shape and packs <paramref name="w"/> (row-major, leading dimension <paramref name="ldw"/>).</summary>
    /// <exception cref="ArgumentException"><paramref name="w"/> is too short, or a dimension is negative.</exception>
    public PackedGemvMatrix(int rows, int cols, ReadOnlySpan<float> w, int ldw)
    {
        ThrowHelper.CheckNonNegative(rows, nameof(rows));
        ThrowHelper.CheckNonNegative(cols, nameof(cols));
        Rows = rows;
        Cols = cols;
        Tiles = (rows + TileRows - 1) / TileRows;
        long floats = (long)Tiles * TileRows * cols + 16;
        if (floats > Array.MaxLength) ThrowHelper.Throw(nameof(rows), $"packed matrix of {rows} x {cols} is too large.");
        _buffer = GC.AllocateArray<float>((int)floats, pinned: true);
        Pointer = (float*)(((nint)Unsafe.AsPointer(ref _buffer[0]) + 63) & ~(nint)63);
        Repack(w, ldw);
    }

    /// <summary>Rows of W (length of y).</summary>
    public int Rows { get; }
    /// <summary>Columns of W (length of x).</summary>
    public int Cols { get; }
    internal int Tiles { get; }
    internal float* Pointer { get; }

    /// <summary>Packs new values of the same shape, allocation-free.</summary>
    /// <exception cref="ArgumentException"><paramref name="w"/> is too short for rows x cols.</exception>
    public void Repack(ReadOnlySpan<float> w, int ldw) => Repack(w, ldw, 0);

    /// <summary>
    /// Packs a row-major block (Rows x <paramref name="w"/>'s columns) into columns starting at <paramref name="colOffset"/>,
    /// so that [W_ih | W_hh] can be packed side by side from two separate matrices.
    /// </summary>
    internal void Repack(ReadOnlySpan<float> w, int ldw, int colOffset, int cols = -1)
    {
        if (cols < 0) cols = Cols - colOffset;
        if (colOffset < 0 || colOffset + cols > Cols)
            ThrowHelper.Throw(nameof(colOffset), $"columns {colOffset}..{colOffset + cols} exceed the matrix's {Cols} columns.");
        Gemm.CheckMatrix(w.Length, Rows, cols, ldw, nameof(w), nameof(ldw), "rows x cols");
        fixed (float* src = w)
        {
            for (int t = 0; t < Tiles; t++)
            {
                float* tile = Pointer + (nint)t * TileRows * Cols;
                for (int i = 0; i < TileRows; i++)
                {
                    int r = t * TileRows + i;
                    if (r < Rows)
                    {
                        float* row = src + (nint)r * ldw;
                        for (int c = 0; c < cols; c++) tile[(nint)(colOffset + c) * TileRows + i] = row[c];
                    }
                    else
                    {
                        for (int c = 0; c < cols; c++) tile[(nint)(colOffset + c) * TileRows + i] = 0f;
                    }
                }
            }
        }
    }
}
