using System.Runtime.CompilerServices;

namespace RnnSimd.Kernels;

/// <summary>
/// A float32 matrix W (rows x cols) rounded to bfloat16 for batch-1 products y = W x with float32 x and y
/// (<see cref="KernelSet.Gemv(PackedBf16GemvMatrix, ReadOnlySpan{float}, Span{float}, bool)"/>): half the bytes of
/// <see cref="PackedGemvMatrix"/>.
/// </summary>
/// <remarks>
/// <para><b>Rounding</b> (<see cref="RoundToBf16"/>): the upper 16 bits of the float after rounding to nearest, ties to
/// even; NaN stays NaN (made quiet), a finite value above the largest bf16 rounds to infinity, as IEEE rounding says.
/// Subnormals are kept.</para>
/// <para><b>Contract of the product</b>: each weight is widened back to float32 exactly (a 16-bit shift) and the product
/// is computed under <see cref="PackedGemvMatrix"/>'s contract: per row four FMA chains over the columns c = j (mod 4),
/// x in float32, combined (s0 + s1) + (s2 + s3), then added to y when accumulating. So the result is bitwise the float32
/// packed product of the bf16-rounded matrix (<see cref="ToSingle"/> of every weight), at every kernel set, and bitwise
/// identical across sets. No vdpbf16ps: .NET 10 has no API for AVX512_BF16, and that instruction would also round x to
/// bf16 and sum pairs before accumulating, a different (less accurate) contract.</para>
/// <para><b>Layout</b> (the same for every kernel set): tiles of <see cref="TileRows"/> rows (the last zero-padded), each a
/// run of 64-byte blocks, one per pair of columns (2p, 2p + 1): 16 little-endian dwords, dword i =
/// bf16(W[16 t + i, 2p]) | bf16(W[16 t + i, 2p + 1]) &lt;&lt; 16 (an odd last column is paired with a zero). A kernel
/// gets column 2p as the dword shifted left by 16 and column 2p + 1 as the dword with its low half cleared: one load
/// and two integer operations per 32 weights. Immutable once built.</para>
/// </remarks>
public sealed unsafe class PackedBf16GemvMatrix
{
    /// <summary>Rows per tile.</summary>
    public const int TileRows = 16;
    private readonly ushort[] _buffer;

    /// <summary>Rounds W (row-major, leading dimension <paramref name="ldw"/>) to bf16 and packs it.</summary>
    /// <exception cref="ArgumentException"><paramref name="w"/> is too short, or a dimension is negative.</exception>
    public PackedBf16GemvMatrix(int rows, int cols, ReadOnlySpan<float> w, int ldw) : this(rows, cols)
    {
        Gemm.CheckMatrix(w.Length, rows, cols, ldw, nameof(w), nameof(ldw), "rows x cols");
        Pack(w, ldw, 0, cols);
    }

    /// <summary>Rounds and packs [A | B] (rows x (colsA + colsB)) from two row-major matrices: the step's [W_ih | W_hh].</summary>
    /// <exception cref="ArgumentException">A span is too short, or a dimension is negative.</exception>
    public PackedBf16GemvMatrix(int rows, ReadOnlySpan<float> a, int colsA, int lda, ReadOnlySpan<float> b, int colsB, int ldb)
        : this(rows, checked(colsA + colsB))
    {
        ThrowHelper.CheckNonNegative(colsA, nameof(colsA));
        ThrowHelper.CheckNonNegative(colsB, nameof(colsB));
        Gemm.CheckMatrix(a.Length, rows, colsA, lda, nameof(a), nameof(lda), "rows x colsA");
        Gemm.CheckMatrix(b.Length, rows, colsB, ldb, nameof(b), nameof(ldb), "rows x colsB");
        Pack(a, lda, 0, colsA);
        Pack(b, ldb, colsA, colsB);
    }

    /// <summary>A matrix from bf16 bit patterns (rows x cols, row-major, leading dimension <paramref name="ld"/>), for example read from a file; stored as given.</summary>
    /// <exception cref="ArgumentException"><paramref name="bits"/> is too short, or a dimension is negative.</exception>
    public static PackedBf16GemvMatrix FromBf16(int rows, int cols, ReadOnlySpan<ushort> bits, int ld)
    {
        var m = new PackedBf16GemvMatrix(rows, cols);
        if (rows == 0 || cols == 0) return m;
        if (ld < cols) ThrowHelper.Throw(nameof(ld), $"ld = {ld} is smaller than cols = {cols}.");
        long required = (long)(rows - 1) * ld + cols;
        if (bits.Length < required) ThrowHelper.Throw(nameof(bits), $"bits has {bits.Length} values, expected at least (rows - 1) * ld + cols = {required}.");
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) *m.Element(r, c) = bits[r * ld + c];
        return m;
    }

    private PackedBf16GemvMatrix(int rows, int cols)
    {
        ThrowHelper.CheckNonNegative(rows, nameof(rows));
        ThrowHelper.CheckNonNegative(cols, nameof(cols));
        Rows = rows;
        Cols = cols;
        Tiles = (rows + TileRows - 1) / TileRows;
        PaddedCols = (cols + 1) & ~1;
        long elements = (long)Tiles * TileRows * PaddedCols + 32;
        if (elements > Array.MaxLength) ThrowHelper.Throw(nameof(rows), $"packed bf16 matrix of {rows} x {cols} is too large.");
        _buffer = GC.AllocateArray<ushort>((int)elements, pinned: true);
        Pointer = (ushort*)(((nint)Unsafe.AsPointer(ref _buffer[0]) + 63) & ~(nint)63);
    }

    /// <summary>Rows of W (length of y).</summary>
    public int Rows { get; }
    /// <summary>Columns of W (length of x).</summary>
    public int Cols { get; }
    /// <summary>Bytes of the packed weights (what a product reads).</summary>
    public long Bytes => (long)Tiles * TileRows * PaddedCols * 2;
    internal int Tiles { get; }
    /// <summary>Cols rounded up to even.</summary>
    internal int PaddedCols { get; }
    /// <summary>Tile t starts at Pointer + t * 16 * PaddedCols; the block of column pair p at + 32 p.</summary>
    internal ushort* Pointer { get; }

    /// <summary>The stored weight W[row, col] (bf16 bits).</summary>
    public ushort Bf16(int row, int col)
    {
        if ((uint)row >= (uint)Rows) ThrowHelper.Throw(nameof(row), $"row {row} is not in [0, {Rows}).");
        if ((uint)col >= (uint)Cols) ThrowHelper.Throw(nameof(col), $"column {col} is not in [0, {Cols}).");
        return *Element(row, col);
    }

    /// <summary>bf16 of a float: round to nearest even on the upper 16 bits; NaN stays NaN (quiet bit set).</summary>
    public static ushort RoundToBf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x0040);
        bits += 0x7FFF + ((bits >> 16) & 1); // cannot wrap: the largest non-NaN pattern is 0xFF800000
        return (ushort)(bits >> 16);
    }

    /// <summary>The float32 a bf16 stands for (exact).</summary>
    public static float ToSingle(ushort bf16) => BitConverter.UInt32BitsToSingle((uint)bf16 << 16);

    private ushort* Element(int row, int col) =>
        Pointer + (nint)(row / TileRows) * TileRows * PaddedCols + (nint)(col / 2) * 2 * TileRows + (row % TileRows) * 2 + (col & 1);

    private void Pack(ReadOnlySpan<float> w, int ldw, int colOffset, int cols)
    {
        if (cols == 0) return;
        for (int r = 0; r < Rows; r++)
        {
            var row = w.Slice(r * ldw, cols);
            for (int c = 0; c < cols; c++) *Element(r, colOffset + c) = RoundToBf16(row[c]);
        }
    }
}
