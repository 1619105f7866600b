namespace RnnSimd.Memory;

/// <summary>One named tensor inside an <see cref="Arena"/>: name, shape and where its floats are.</summary>
/// <param name="Name">The tensor's name (PyTorch state_dict names for parameters).</param>
/// <param name="Shape">The tensor's shape, row-major.</param>
/// <param name="Offset">Offset of the first float in the arena.</param>
/// <param name="Length">Number of floats (the product of the shape).</param>
public sealed record ArenaEntry(string Name, int[] Shape, int Offset, int Length)
{
    /// <summary>The shape as text, e.g. "(1024, 64)".</summary>
    public string ShapeText => "(" + string.Join(", ", Shape) + ")";
}

/// <summary>
/// One allocation carved into named views from a list of (name, shape). Each view starts on a 16-float (64-byte)
/// boundary relative to the arena and the padding is zero. Parameters and their gradients use two arenas of one layout.
/// </summary>
public sealed class Arena
{
    private readonly Dictionary<string, ArenaEntry> _byName;

    /// <summary>Lays out the given tensors in order.</summary>
    /// <exception cref="ArgumentException">A name repeats or a dimension is negative.</exception>
    public Arena(IEnumerable<(string Name, int[] Shape)> tensors)
    {
        var entries = new List<ArenaEntry>();
        _byName = new Dictionary<string, ArenaEntry>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long length = 1;
            foreach (int d in shape)
            {
                if (d < 0) throw new ArgumentException($"tensor '{name}' has a negative dimension.", nameof(tensors));
                length *= d;
            }
            var entry = new ArenaEntry(name, (int[])shape.Clone(), (int)offset, (int)length);
            if (!_byName.TryAdd(name, entry)) throw new ArgumentException($"tensor '{name}' appears twice.", nameof(tensors));
            entries.Add(entry);
            offset += (length + 15) / 16 * 16;
            if (offset > Array.MaxLength) throw new ArgumentException("the tensors do not fit in one array.", nameof(tensors));
        }
        Entries = entries;
        // Pinned (pinned object heap): kernels keep raw pointers into arenas for their lifetime.
        Data = GC.AllocateArray<float>((int)offset, pinned: true);
    }

    /// <summary>A new zeroed arena with the same layout.</summary>
    public Arena CloneLayout() => new(Entries.Select(e => (e.Name, e.Shape)));

    /// <summary>Whether <paramref name="other"/> has exactly this layout: the same names, shapes and offsets, in order.</summary>
    public bool HasLayoutOf(Arena other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (Data.Length != other.Data.Length || Entries.Count != other.Entries.Count) return false;
        for (int i = 0; i < Entries.Count; i++)
        {
            ArenaEntry x = Entries[i], y = other.Entries[i];
            if (x.Name != y.Name || x.Offset != y.Offset || !x.Shape.AsSpan().SequenceEqual(y.Shape)) return false;
        }
        return true;
    }

    /// <summary>Every tensor, in layout order.</summary>
    public IReadOnlyList<ArenaEntry> Entries { get; }

    /// <summary>The whole allocation (including zero padding between tensors).</summary>
    public float[] Data { get; }

    /// <summary>Whether a tensor of that name exists.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The entry of a tensor.</summary>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    public ArenaEntry Entry(string name) => _byName.TryGetValue(name, out var e) ? e
        : throw new KeyNotFoundException($"no tensor named '{name}'; have: {string.Join(", ", Entries.Select(x => x.Name))}.");

    /// <summary>The floats of a tensor.</summary>
    public Span<float> this[string name] => View(Entry(name));

    /// <summary>The floats of an entry.</summary>
    public Span<float> View(ArenaEntry entry) => Data.AsSpan(entry.Offset, entry.Length);

    /// <summary>A pointer to a tensor's first float (the arena is pinned for its lifetime).</summary>
    internal unsafe float* Pointer(string name) =>
        (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref Data[0]) + Entry(name).Offset;

    /// <summary>
    /// this += <paramref name="other"/>, element by element (one float add each, so the result does not depend on how the
    /// loop is split). Summing per-thread gradient arenas in a fixed order gives a result independent of thread timing.
    /// </summary>
    /// <exception cref="ArgumentException">The layouts differ.</exception>
    public void Add(Arena other)
    {
        if (!HasLayoutOf(other)) throw new ArgumentException("other has another layout (names, shapes or offsets differ).", nameof(other));
        var a = Data.AsSpan();
        ReadOnlySpan<float> b = other.Data;
        int i = 0;
        for (; i + System.Numerics.Vector<float>.Count <= a.Length; i += System.Numerics.Vector<float>.Count)
            (new System.Numerics.Vector<float>(a[i..]) + new System.Numerics.Vector<float>(b[i..])).CopyTo(a[i..]);
        for (; i < a.Length; i++) a[i] += b[i];
    }

    /// <summary>Sets every float to zero.</summary>
    public void Clear() => Array.Clear(Data);
}
