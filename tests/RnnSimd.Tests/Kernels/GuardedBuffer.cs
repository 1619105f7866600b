using System.Runtime.InteropServices;

namespace RnnSimd.Tests.Kernels;

/// <summary>
/// Native memory followed by a page with no access rights (mprotect PROT_NONE): a span taken with <see cref="End"/> ends
/// exactly at that page, so any read or write past the span's end faults and kills the test run instead of passing
/// silently. The floats before the span are filled with a NaN sentinel so under-writes are visible too.
/// </summary>
public sealed unsafe class GuardedBuffer : IDisposable
{
    private const int PageSize = 4096;
    private const int ProtNone = 0, ProtReadWrite = 3;
    private readonly byte* _base;
    private readonly nuint _dataBytes;

    [DllImport("libc", SetLastError = true)]
    private static extern int mprotect(void* addr, nuint len, int prot);

    public GuardedBuffer(int capacityFloats)
    {
        _dataBytes = (nuint)(((long)capacityFloats * 4 + PageSize - 1) / PageSize * PageSize);
        _base = (byte*)NativeMemory.AlignedAlloc(_dataBytes + PageSize, PageSize);
        Capacity = (int)(_dataBytes / 4);
        if (OperatingSystem.IsLinux() && mprotect(_base + _dataBytes, PageSize, ProtNone) != 0)
            throw new InvalidOperationException($"mprotect failed: {Marshal.GetLastPInvokeError()}");
    }

    public int Capacity { get; }

    /// <summary>The last <paramref name="n"/> floats before the guard page; everything before them is set to NaN.</summary>
    public Span<float> End(int n)
    {
        var all = new Span<float>(_base, Capacity);
        all[..(Capacity - n)].Fill(SentinelValue);
        return all[(Capacity - n)..];
    }

    /// <summary>The sentinel written before the data.</summary>
    public static readonly float SentinelValue = BitConverter.Int32BitsToSingle(0x7FC0_1234);

    /// <summary>Asserts the <paramref name="count"/> floats just before the last <paramref name="n"/> still hold the sentinel.</summary>
    public void AssertSentinelBefore(int n, int count = 64)
    {
        var all = new Span<float>(_base, Capacity);
        int start = Math.Max(0, Capacity - n - count);
        for (int i = start; i < Capacity - n; i++)
            if (BitConverter.SingleToInt32Bits(all[i]) != 0x7FC0_1234)
                throw new Xunit.Sdk.XunitException($"write before the start of the span ({Capacity - n - i} floats before)");
    }

    public void Dispose()
    {
        if (OperatingSystem.IsLinux()) mprotect(_base + _dataBytes, PageSize, ProtReadWrite);
        NativeMemory.AlignedFree(_base);
    }
}
