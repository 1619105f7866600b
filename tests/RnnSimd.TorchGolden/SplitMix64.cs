namespace RnnSimd.TorchGolden;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014). Our own generator rather than LibTorch's, so that the case
/// data depends only on this file and the seed, not on the LibTorch version or its RNG.
/// </summary>
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [-a, a), 24 random bits, rounded to float32 (exactly representable).</summary>
    public float Uniform(float a) => (float)((((long)(Next() >> 40) - (1L << 23)) / (double)(1L << 23)) * a);

    public float[] Uniform(int count, float a)
    {
        var x = new float[count];
        for (int i = 0; i < x.Length; i++) x[i] = Uniform(a);
        return x;
    }

    /// <summary>FNV-1a of the case name: each case's seed, independent of its position in the list.</summary>
    public static ulong SeedOf(string name)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char c in name) { h ^= c; h *= 0x100000001B3UL; }
        return h;
    }
}
