using System.Runtime.CompilerServices;

namespace RnnSimd.Kernels;

/// <summary>
/// A float32 matrix W (rows x cols) quantized to int8 for batch-1 products y = W x with x quantized per call
/// (<see cref="Int8Activations"/>, <see cref="KernelSet.Gemv(PackedInt8GemvMatrix, Int8Activations, ReadOnlySpan{float}, Span{float}, bool)"/>).
/// </summary>
/// <remarks>
/// <para><b>Segments.</b> The columns are split into consecutive segments (for a recurrent step [W_ih | W_hh]: the input
/// columns and the hidden columns), each with its own scales, because the two halves of the step's vector [x | h] have
/// different ranges. One segment per matrix is the plain case.</para>
/// <para><b>Quantization</b> (symmetric, per row and segment): s[r, g] = max_{c in g} |W[r, c]| / 127 (a float32 division),
/// q[r, c] = clamp(round_half_even(W[r, c] / s[r, g]), -127, 127) (a float32 division, then rounding). A row whose
/// maximum is 0, or so small that s underflows to 0, gets s = 0 and q = 0. -128 is never produced. W must be finite:
/// NaN or infinity is refused with the row and column, before anything is allocated.</para>
/// <para><b>Layout</b> (the same for every kernel set): each segment is zero-padded to a multiple of <see cref="KGroup"/>
/// columns and the segments are concatenated (<see cref="PaddedCols"/>). Rows are grouped in tiles of <see cref="TileRows"/>
/// (the last one zero-padded); a tile is a run of 64-byte blocks, one per group of 4 padded columns, byte 4 i + j of a
/// block being q[16 t + i, 4 g + j]. That is the operand order of vpdpbusd (one dword = 4 consecutive k of one row;
/// 8 rows per 256-bit half) and, sign-extended to int16, of vpmaddwd (a row's pairs k, k+1 and k+2, k+3 adjacent).
/// Beside the bytes: the scales (segment-major, one float per padded row) and, per row and segment, 128 * sum_c q[r, c],
/// which the vpdpbusd kernels subtract because that instruction needs unsigned activations (they use q_x + 128).</para>
/// <para>Immutable once built: one matrix can serve any number of threads.</para>
/// </remarks>
public sealed unsafe class PackedInt8GemvMatrix
{
    /// <summary>Rows per tile.</summary>
    public const int TileRows = 16;

    /// <summary>Consecutive columns of one row stored together (the k-depth of one vpdpbusd dword); segments are padded to a multiple.</summary>
    public const int KGroup = 4;

    /// <summary>
    /// The widest segment allowed: the vpdpbusd kernels accumulate sum_c (q_x + 128) q_w in int32, |.| &lt;= 255 * 127 *
    /// 65,536 = 2,122,383,360 &lt; 2^31, so no column count up to this can overflow (the exact sum itself is at most 127^2 per column).
    /// </summary>
    public const int MaxSegmentColumns = 65_536;

    private readonly sbyte[] _weights;
    private readonly float[] _scales;
    private readonly int[] _corrections;

    /// <summary>
    /// Quantizes W (row-major, leading dimension <paramref name="ldw"/>) with the column segments given by
    /// <paramref name="segmentBounds"/> (0 = b_0 &lt;= b_1 &lt;= ... &lt;= b_n = cols; segment g is [b_g, b_(g+1))). An empty
    /// span means one segment [0, cols).
    /// </summary>
    /// <exception cref="ArgumentException">A shape or bound is wrong, <paramref name="w"/> is too short, or an element is NaN or infinite (the message names its row and column).</exception>
    public PackedInt8GemvMatrix(int rows, int cols, ReadOnlySpan<float> w, int ldw, ReadOnlySpan<int> segmentBounds = default)
        : this(rows, Int8Segments.Create(cols, segmentBounds), PrepareSingle(rows, cols, w, ldw))
    {
        fixed (float* p = w)
            for (int g = 0; g < Layout.Count; g++)
                QuantizeSegment(g, p + Layout.Start(g), ldw);
    }

    /// <summary>
    /// Quantizes [A | B] (rows x (colsA + colsB)) from two row-major matrices, one segment each: the recurrent step's
    /// [W_ih | W_hh] without copying them side by side first.
    /// </summary>
    /// <exception cref="ArgumentException">A shape is wrong, a span is too short, or an element is NaN or infinite (the message names the matrix, its row and column).</exception>
    public PackedInt8GemvMatrix(int rows, ReadOnlySpan<float> a, int colsA, int lda, ReadOnlySpan<float> b, int colsB, int ldb)
        : this(rows, Int8Segments.Create(colsA, colsB), PreparePair(rows, a, colsA, lda, b, colsB, ldb))
    {
        fixed (float* pa = a)
        fixed (float* pb = b)
        {
            QuantizeSegment(0, pa, lda);
            QuantizeSegment(1, pb, ldb);
        }
    }

    /// <summary>
    /// A matrix from values already quantized (for example read from a file): q (rows x cols, row-major, leading dimension
    /// <paramref name="ldq"/>) in [-127, 127] and the scales s[r, g] (rows x segments, row-major). The products are then
    /// bitwise those of the matrix the values were exported from (<see cref="Quantized"/>, <see cref="Scale"/>).
    /// </summary>
    /// <exception cref="ArgumentException">A shape is wrong, a q is -128, or a scale is negative, NaN or infinite (the message names its row and column or segment).</exception>
    public static PackedInt8GemvMatrix FromQuantized(int rows, int cols, ReadOnlySpan<sbyte> q, int ldq, ReadOnlySpan<float> scales,
        ReadOnlySpan<int> segmentBounds = default)
    {
        var layout = Int8Segments.Create(cols, segmentBounds);
        ThrowHelper.CheckNonNegative(rows, nameof(rows));
        if (rows > 0 && cols > 0)
        {
            if (ldq < cols) ThrowHelper.Throw(nameof(ldq), $"ldq = {ldq} is smaller than cols = {cols}.");
            long required = (long)(rows - 1) * ldq + cols;
            if (q.Length < required) ThrowHelper.Throw(nameof(q), $"q has {q.Length} values, expected at least (rows - 1) * ldq + cols = {required}.");
        }
        ThrowHelper.CheckLength(scales.Length, checked(rows * layout.Count), nameof(scales), "rows x segments");
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
                if (q[r * ldq + c] == sbyte.MinValue)
                    ThrowHelper.Throw(nameof(q), $"q[{r}, {c}] = -128; symmetric int8 weights are in [-127, 127].");
            for (int g = 0; g < layout.Count; g++)
            {
                float s = scales[r * layout.Count + g];
                if (!float.IsFinite(s) || s < 0)
                    ThrowHelper.Throw(nameof(scales), $"scale of row {r}, segment {g} = {s}; scales must be finite and non-negative.");
            }
        }
        var m = new PackedInt8GemvMatrix(rows, layout, true);
        for (int r = 0; r < rows; r++)
        for (int g = 0; g < layout.Count; g++)
        {
            int sum = 0;
            for (int c = layout.Start(g); c < layout.Start(g + 1); c++)
            {
                sbyte v = q[r * ldq + c];
                *m.Element(r, layout.PaddedColumn(c)) = v;
                sum += v;
            }
            m.Scales[(nint)g * m.PaddedRows + r] = scales[r * layout.Count + g];
            m.Corrections[(nint)g * m.PaddedRows + r] = 128 * sum;
        }
        return m;
    }

    private PackedInt8GemvMatrix(int rows, Int8Segments layout, bool _)
    {
        Rows = rows;
        Layout = layout;
        Tiles = (rows + TileRows - 1) / TileRows;
        long bytes = (long)Tiles * TileRows * layout.PaddedCols + 64;
        if (bytes > Array.MaxLength) ThrowHelper.Throw(nameof(rows), $"packed int8 matrix of {rows} x {layout.Cols} is too large.");
        _weights = GC.AllocateArray<sbyte>((int)bytes, pinned: true);
        Pointer = (sbyte*)(((nint)Unsafe.AsPointer(ref _weights[0]) + 63) & ~(nint)63);
        int paddedRows = Tiles * TileRows;
        _scales = GC.AllocateArray<float>(layout.Count * paddedRows + 16, pinned: true);
        _corrections = GC.AllocateArray<int>(layout.Count * paddedRows + 16, pinned: true);
        Scales = (float*)(((nint)Unsafe.AsPointer(ref _scales[0]) + 63) & ~(nint)63);
        Corrections = (int*)(((nint)Unsafe.AsPointer(ref _corrections[0]) + 63) & ~(nint)63);
    }

    /// <summary>Rows of W (length of y).</summary>
    public int Rows { get; }
    /// <summary>Columns of W (length of x).</summary>
    public int Cols => Layout.Cols;
    /// <summary>Number of column segments (each with its own scales).</summary>
    public int SegmentCount => Layout.Count;
    /// <summary>Columns after padding each segment to a multiple of <see cref="KGroup"/>.</summary>
    public int PaddedCols => Layout.PaddedCols;
    /// <summary>Bytes of the packed weights, scales and corrections (what a product reads).</summary>
    public long Bytes => (long)Tiles * TileRows * (PaddedCols + 8L * SegmentCount);

    /// <summary>The first column of segment <paramref name="segment"/> (for segment = SegmentCount: Cols).</summary>
    public int SegmentStart(int segment) => Layout.Start(segment);

    /// <summary>The weight scale s[row, segment]: W[row, c] ~ q[row, c] * s for the columns c of the segment.</summary>
    public float Scale(int row, int segment)
    {
        CheckRow(row);
        if ((uint)segment >= (uint)SegmentCount) ThrowHelper.Throw(nameof(segment), $"segment {segment} is not in [0, {SegmentCount}).");
        return Scales[(nint)segment * PaddedRows + row];
    }

    /// <summary>The quantized weight q[row, col] in [-127, 127].</summary>
    public sbyte Quantized(int row, int col)
    {
        CheckRow(row);
        if ((uint)col >= (uint)Cols) ThrowHelper.Throw(nameof(col), $"column {col} is not in [0, {Cols}).");
        return *Element(row, Layout.PaddedColumn(col));
    }

    internal Int8Segments Layout { get; }
    internal int Tiles { get; }
    internal int PaddedRows => Tiles * TileRows;
    /// <summary>Tile t's blocks start at Pointer + t * 16 * PaddedCols.</summary>
    internal sbyte* Pointer { get; }
    /// <summary>s[r, g] at Scales[g * PaddedRows + r] (0 in padded rows).</summary>
    internal float* Scales { get; }
    /// <summary>128 * sum_c q[r, c] over segment g at Corrections[g * PaddedRows + r].</summary>
    internal int* Corrections { get; }

    private sbyte* Element(int row, int paddedCol) =>
        Pointer + (nint)(row / TileRows) * TileRows * PaddedCols + (nint)(paddedCol / KGroup) * TileRows * KGroup
        + (row % TileRows) * KGroup + paddedCol % KGroup;

    private void CheckRow(int row)
    {
        if ((uint)row >= (uint)Rows) ThrowHelper.Throw(nameof(row), $"row {row} is not in [0, {Rows}).");
    }

    /// <summary>Quantizes segment g's columns of every row from a row-major source whose column 0 is the segment's first.</summary>
    private void QuantizeSegment(int g, float* src, int ld)
    {
        int width = Layout.Width(g), pc0 = Layout.PaddedStart(g);
        for (int r = 0; r < Rows; r++)
        {
            float* row = src + (nint)r * ld;
            float max = 0f;
            for (int c = 0; c < width; c++) max = Math.Max(max, Math.Abs(row[c]));
            float s = Int8Quantizer.ScaleFor(max);
            int sum = 0;
            for (int c = 0; c < width; c++)
            {
                int q = Int8Quantizer.Quantize(row[c], s);
                *Element(r, pc0 + c) = (sbyte)q;
                sum += q;
            }
            Scales[(nint)g * PaddedRows + r] = s;
            Corrections[(nint)g * PaddedRows + r] = 128 * sum;
        }
    }

    private static bool PrepareSingle(int rows, int cols, ReadOnlySpan<float> w, int ldw)
    {
        ThrowHelper.CheckNonNegative(rows, nameof(rows));
        ThrowHelper.CheckNonNegative(cols, nameof(cols));
        Gemm.CheckMatrix(w.Length, rows, cols, ldw, nameof(w), nameof(ldw), "rows x cols");
        CheckFinite(w, rows, cols, ldw, nameof(w), 0);
        return true;
    }

    private static bool PreparePair(int rows, ReadOnlySpan<float> a, int colsA, int lda, ReadOnlySpan<float> b, int colsB, int ldb)
    {
        ThrowHelper.CheckNonNegative(rows, nameof(rows));
        ThrowHelper.CheckNonNegative(colsA, nameof(colsA));
        ThrowHelper.CheckNonNegative(colsB, nameof(colsB));
        Gemm.CheckMatrix(a.Length, rows, colsA, lda, nameof(a), nameof(lda), "rows x colsA");
        Gemm.CheckMatrix(b.Length, rows, colsB, ldb, nameof(b), nameof(ldb), "rows x colsB");
        CheckFinite(a, rows, colsA, lda, nameof(a), 0);
        CheckFinite(b, rows, colsB, ldb, nameof(b), colsA);
        return true;
    }

    /// <summary>Refuses NaN and infinity: a symmetric scale cannot represent them, and a silent 0 or 127 would be a wrong model.</summary>
    private static void CheckFinite(ReadOnlySpan<float> w, int rows, int cols, int ld, string name, int colOffset)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = w.Slice(r * ld, cols);
            for (int c = 0; c < cols; c++)
                if (!float.IsFinite(row[c]))
                    ThrowHelper.Throw(name, $"{name}[{r}, {c}] = {row[c]} (row {r}, column {colOffset + c} of the matrix) is not finite; int8 quantization needs finite weights.");
        }
    }
}
