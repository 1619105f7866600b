using RnnSimd.Kernels;

namespace RnnSimd.Onnx;

/// <summary>
/// One node of a loaded graph. <see cref="Plan"/> runs when a session's input shapes change: it sizes the outputs
/// (and may read static inputs such as a Reshape's shape); <see cref="Run"/> computes them into the planned buffers
/// without allocating. A node whose inputs are all static runs once while planning (constant folding).
/// </summary>
internal abstract class OnnxOp
{
    public OnnxNode Node = null!;
    public int[] In = [], Out = [];   // value slots; -1 where an optional input or output is absent
    public int Index;                 // position in the graph: this node's slot in OnnxSession.OpState
    /// <summary>Whether every input is known while planning (initializers, constants, shapes): the node then runs while planning.</summary>
    public bool PlanStatic;

    public string Where => Node.Describe();

    /// <summary>Whether output k is a float tensor, given which inputs are (checked at load).</summary>
    public abstract bool OutputIsFloat(int k, Func<int, bool> inputIsFloat);

    public abstract void Plan(OnnxSession s);

    public abstract void Run(OnnxSession s);

    /// <summary>Inputs that must be known while planning (initializers, constants or computed from shapes), by position.</summary>
    public virtual IEnumerable<int> MustBeStatic => [];

    /// <summary>This node's per-session plan data (shared ops hold only their configuration, so sessions may plan at once).</summary>
    protected T PlanData<T>(OnnxSession s) where T : class, new() => (T)(s.OpState[Index] ??= new T());

    /// <summary>Validates attributes and input counts at load; throws <see cref="NotSupportedException"/> for what is not supported.</summary>
    public virtual void Check(long opset) { }

    protected OnnxValue V(OnnxSession s, int k) => s.Values[In[k]];
    protected OnnxValue O(OnnxSession s, int k) => s.Values[Out[k]];
    protected bool Has(int k) => k < In.Length && In[k] >= 0;

    /// <summary>
    /// Checks the node's arity at load: inputs 0 .. <paramref name="required"/> - 1 present (not ""), at most
    /// <paramref name="max"/> inputs, and exactly one output, present. Every op but the recurrent ones reads In[k] and
    /// writes Out[0] unguarded, so a node without them must not load.
    /// </summary>
    protected void CheckArity(int required, int max)
    {
        if (In.Length > max) throw Bad($"has {In.Length} inputs, at most {max}");
        for (int k = 0; k < required; k++)
            if (!Has(k)) throw Bad(k < In.Length ? $"input {k} is empty, but it is required" : $"has {In.Length} inputs, needs {required}");
        if (Node.Outputs.Length != 1 || Node.Outputs[0].Length == 0)
            throw Bad($"has {Node.Outputs.Length} outputs{(Node.Outputs.Length == 1 ? " (empty)" : "")}, needs exactly 1");
    }

    /// <summary>Input k, which must hold integers (a shape, axes, indices): refused when it is a float tensor.</summary>
    protected OnnxValue IntegerInput(OnnxSession s, int k, string what)
    {
        var v = V(s, k);
        if (v.IsFloat) throw Bad($"{what} ('{Node.Inputs[k]}') is a float tensor; it must hold integers");
        return v;
    }

    protected InvalidDataException Bad(string what) => new($"{Where}: {what}");

    protected NotSupportedException Unsupported(string what) => new($"unsupported: {what} in {Where}");

    /// <summary>A normalised axis in [0, rank) from one in [-rank, rank).</summary>
    protected int Axis(long axis, int rank, string what)
    {
        if (axis < -rank || axis >= rank) throw Bad($"{what} {axis} is outside [-{rank}, {rank - 1}] for a rank-{rank} tensor");
        return (int)(axis < 0 ? axis + rank : axis);
    }

    protected static long[] Strides(ReadOnlySpan<long> shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    /// <summary>Copies a value's data (float or int) into another of the same kind and count.</summary>
    protected static void CopyData(OnnxValue src, OnnxValue dst)
    {
        if (src.IsFloat) src.Floats.CopyTo(dst.Floats); else src.Ints.CopyTo(dst.Ints);
    }
}

/// <summary>Attribute access with type checks; errors name the node and attribute.</summary>
internal static class Attr
{
    public static OnnxAttribute? Get(OnnxNode n, string name, int type)
    {
        if (!n.Attributes.TryGetValue(name, out var a)) return null;
        if (a.Type != type)
            throw new InvalidDataException($"{n.Describe()}: attribute '{name}' is {a.TypeName}, expected {new OnnxAttribute { Type = type }.TypeName}");
        return a;
    }

    public static long Int(OnnxNode n, string name, long dflt) => Get(n, name, OnnxAttribute.IntType)?.I ?? dflt;
    public static float Float(OnnxNode n, string name, float dflt) => Get(n, name, OnnxAttribute.FloatType)?.F ?? dflt;
    public static string? String(OnnxNode n, string name) => Get(n, name, OnnxAttribute.StringType)?.S;
    public static long[]? Ints(OnnxNode n, string name) => Get(n, name, OnnxAttribute.IntsType)?.Ints;
    public static float[]? Floats(OnnxNode n, string name) => Get(n, name, OnnxAttribute.FloatsType)?.Floats;
    public static string[]? Strings(OnnxNode n, string name) => Get(n, name, OnnxAttribute.StringsType)?.Strings;

    /// <summary>Throws for any attribute not in <paramref name="known"/> (an attribute we would silently ignore could change the result).</summary>
    public static void OnlyKnown(OnnxNode n, params string[] known)
    {
        foreach (var name in n.Attributes.Keys)
            if (Array.IndexOf(known, name) < 0)
                throw new NotSupportedException($"unsupported: attribute '{name}' in {n.Describe()}");
    }
}

internal sealed class IdentityOp : OnnxOp
{
    public override bool OutputIsFloat(int k, Func<int, bool> f) => f(0);
    public override void Check(long opset)
    {
        CheckArity(1, 1);
        Attr.OnlyKnown(Node);
    }

    public override void Plan(OnnxSession s) => O(s, 0).Resize(V(s, 0).Shape, Where);
    public override void Run(OnnxSession s) => CopyData(V(s, 0), O(s, 0));
}

internal sealed class ConstantOp : OnnxOp
{
    private OnnxValue _value = null!;
    /// <summary>The constant (known at load).</summary>
    public OnnxValue Value => _value;
    public override bool OutputIsFloat(int k, Func<int, bool> f) => _value.IsFloat;

    public override void Check(long opset)
    {
        CheckArity(0, 0);
        if (Node.Attributes.Count != 1) throw Bad("needs exactly one value attribute");
        var a = Node.Attributes.Values.First();
        _value = a.Name switch
        {
            "value" => OnnxValue.FromTensor(Attr.Get(Node, "value", OnnxAttribute.TensorType)!.T ?? throw Bad("attribute 'value' holds no tensor")),
            "value_float" => OnnxValue.FromTensor(OnnxTensor.FromFloats("", [Attr.Float(Node, "value_float", 0)])),
            "value_floats" => OnnxValue.FromTensor(OnnxTensor.FromFloats("", Attr.Floats(Node, "value_floats")!, Attr.Floats(Node, "value_floats")!.Length)),
            "value_int" => OnnxValue.FromTensor(OnnxTensor.FromIntegers("", OnnxDataType.Int64, [Attr.Int(Node, "value_int", 0)])),
            "value_ints" => OnnxValue.FromTensor(OnnxTensor.FromIntegers("", OnnxDataType.Int64, Attr.Ints(Node, "value_ints")!, Attr.Ints(Node, "value_ints")!.Length)),
            _ => throw Unsupported($"attribute '{a.Name}'"),
        };
    }

    public override void Plan(OnnxSession s) => O(s, 0).Resize(_value.Shape, Where);

    public override void Run(OnnxSession s) => CopyData(_value, O(s, 0));
}

internal sealed class CastOp : OnnxOp
{
    private OnnxDataType _to;
    /// <summary>The type cast to.</summary>
    public OnnxDataType To => _to;
    public override bool OutputIsFloat(int k, Func<int, bool> f) => _to == OnnxDataType.Float;

    public override void Check(long opset)
    {
        CheckArity(1, 1);
        Attr.OnlyKnown(Node, "to", "saturate");
        _to = (OnnxDataType)Attr.Int(Node, "to", 0);
        if (_to != OnnxDataType.Float && !OnnxTensor.IsInteger(_to)) throw Unsupported($"cast to {_to}");
    }

    public override void Plan(OnnxSession s) => O(s, 0).Resize(V(s, 0).Shape, Where);

    public override void Run(OnnxSession s)
    {
        OnnxValue x = V(s, 0), y = O(s, 0);
        if (x.IsFloat && y.IsFloat) { x.Floats.CopyTo(y.Floats); return; }
        if (!x.IsFloat && y.IsFloat) { var src = x.Ints; var dst = y.Floats; for (int i = 0; i < src.Length; i++) dst[i] = src[i]; return; }
        if (x.IsFloat)
        {
            var src = x.Floats; var dst = y.Ints;
            for (int i = 0; i < src.Length; i++)
            {
                float v = src[i];
                if (_to == OnnxDataType.Bool) { dst[i] = v != 0 ? 1 : 0; continue; }
                if (!float.IsFinite(v) || v >= 9.2233715E+18f || v < -9.2233715E+18f) throw Bad($"cannot cast {v} to {_to}");
                dst[i] = Wrap((long)v, _to); // truncation toward zero, as ONNX Runtime
            }
            return;
        }
        var a = x.Ints; var b = y.Ints;
        for (int i = 0; i < a.Length; i++) b[i] = Wrap(a[i], _to);
    }

    private static long Wrap(long v, OnnxDataType t) => t switch
    {
        OnnxDataType.Int8 => (sbyte)v, OnnxDataType.UInt8 => (byte)v, OnnxDataType.Int16 => (short)v, OnnxDataType.UInt16 => (ushort)v,
        OnnxDataType.Int32 => (int)v, OnnxDataType.UInt32 => (uint)v, OnnxDataType.Bool => v != 0 ? 1 : 0, _ => v,
    };
}

/// <summary>Shape (with opset 15's start / end).</summary>
internal sealed class ShapeOp : OnnxOp
{
    private long _start, _end = long.MaxValue;
    public override bool OutputIsFloat(int k, Func<int, bool> f) => false;

    public override void Check(long opset)
    {
        CheckArity(1, 1);
        Attr.OnlyKnown(Node, "start", "end");
        _start = Attr.Int(Node, "start", 0);
        _end = Attr.Int(Node, "end", long.MaxValue);
    }

    private (int, int) Range(int rank)
    {
        long a = _start < 0 ? _start + rank : _start, b = _end < 0 ? _end + rank : _end;
        a = Math.Clamp(a, 0, rank); b = Math.Clamp(b, 0, rank);
        return ((int)a, (int)Math.Max(a, b));
    }

    public override void Plan(OnnxSession s)
    {
        var (a, b) = Range(V(s, 0).Rank);
        O(s, 0).Resize([b - a], Where);
    }

    public override void Run(OnnxSession s)
    {
        var x = V(s, 0);
        var (a, b) = Range(x.Rank);
        x.Shape.AsSpan(a, b - a).CopyTo(O(s, 0).Ints);
    }
}

/// <summary>Reshape, Squeeze, Unsqueeze: a new shape over the same data.</summary>
internal sealed class ReshapeOp : OnnxOp
{
    private readonly string _kind;
    private long[]? _axesAttr;
    private bool _allowZero;
    private long _opset;

    public ReshapeOp(string kind) => _kind = kind;
    public string Kind => _kind;
    /// <summary>Squeeze / Unsqueeze axes given as an attribute (opset &lt; 13), else null.</summary>
    public long[]? AxesAttribute => _axesAttr;
    public override bool OutputIsFloat(int k, Func<int, bool> f) => f(0);
    public override IEnumerable<int> MustBeStatic => [1];

    public override void Check(long opset)
    {
        _opset = opset;
        CheckArity(_kind == "Reshape" ? 2 : 1, 2);
        if (_kind == "Reshape") { Attr.OnlyKnown(Node, "allowzero"); _allowZero = Attr.Int(Node, "allowzero", 0) != 0; }
        else if (opset < 13) { Attr.OnlyKnown(Node, "axes"); _axesAttr = Attr.Ints(Node, "axes"); }
        else Attr.OnlyKnown(Node);
        if (_kind == "Unsqueeze" && _axesAttr is null && !Has(1)) throw Bad("has no axes");
        if (_kind == "Reshape" && !Has(1)) throw Bad("has no shape input");
    }

    public override void Plan(OnnxSession s)
    {
        var x = V(s, 0);
        ReadOnlySpan<long> axes = _axesAttr ?? (Has(1) ? IntegerInput(s, 1, "axes").Ints : []);
        long[] shape = _kind switch
        {
            "Reshape" => ReshapeTo(x, IntegerInput(s, 1, "shape").Ints),
            "Squeeze" => Squeeze(x, axes),
            _ => Unsqueeze(x, axes),
        };
        // The count (and the budget) before the buffer: a hostile shape must not allocate up to the budget first.
        if (OnnxTensor.CheckedCountOrThrow(shape, O(s, 0).Name, Where) != x.Count)
            throw Bad($"cannot reshape {x.ShapeText} ({x.Count} elements) to [{string.Join(", ", shape)}]");
        O(s, 0).Resize(shape, Where);
    }

    private long[] ReshapeTo(OnnxValue x, ReadOnlySpan<long> target)
    {
        var shape = new long[target.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < target.Length; i++)
        {
            long d = target[i];
            if (d == 0 && !_allowZero)
            {
                if (i >= x.Rank) throw Bad($"shape[{i}] = 0 copies a dimension the input {x.ShapeText} does not have");
                d = x.Shape[i];
            }
            if (d == -1)
            {
                if (infer >= 0) throw Bad("shape has more than one -1");
                infer = i;
                continue;
            }
            if (d < 0) throw Bad($"shape[{i}] = {d} is negative");
            shape[i] = d;
            known = d == 0 ? 0 : known > long.MaxValue / d ? throw Bad("shape overflows") : known * d;
        }
        if (infer >= 0)
        {
            if (known == 0 || x.Count % known != 0) throw Bad($"cannot infer the -1 in the shape for an input of {x.Count} elements");
            shape[infer] = x.Count / known;
        }
        return shape;
    }

    private long[] Squeeze(OnnxValue x, ReadOnlySpan<long> axes)
    {
        var drop = new bool[x.Rank];
        if (axes.IsEmpty) for (int i = 0; i < x.Rank; i++) drop[i] = x.Shape[i] == 1;
        foreach (long a in axes)
        {
            int k = Axis(a, x.Rank, "axis");
            if (x.Shape[k] != 1) throw Bad($"cannot squeeze axis {a} of size {x.Shape[k]} (input {x.ShapeText})");
            drop[k] = true;
        }
        return x.Shape.Where((_, i) => !drop[i]).ToArray();
    }

    private long[] Unsqueeze(OnnxValue x, ReadOnlySpan<long> axes)
    {
        int rank = x.Rank + axes.Length;
        var add = new bool[rank];
        foreach (long a in axes)
        {
            int k = Axis(a, rank, "axis");
            if (add[k]) throw Bad($"axis {a} appears twice");
            add[k] = true;
        }
        var shape = new long[rank];
        for (int i = 0, j = 0; i < rank; i++) shape[i] = add[i] ? 1 : x.Shape[j++];
        return shape;
    }

    public override void Run(OnnxSession s) => CopyData(V(s, 0), O(s, 0));
}

internal sealed class TransposeOp : OnnxOp
{
    private long[]? _perm;
    private sealed class Data { public long[] SrcStrides = []; }
    public long[]? Perm => _perm;
    public override bool OutputIsFloat(int k, Func<int, bool> f) => f(0);

    public override void Check(long opset)
    {
        CheckArity(1, 1);
        Attr.OnlyKnown(Node, "perm");
        _perm = Attr.Ints(Node, "perm");
    }

    public override void Plan(OnnxSession s)
    {
        var x = V(s, 0);
        int r = x.Rank;
        var _p = new int[r];
        var seen = new bool[r];
        if (_perm is not null && _perm.Length != r) throw Bad($"perm has {_perm.Length} entries for a rank-{r} input");
        for (int i = 0; i < r; i++)
        {
            long p = _perm is null ? r - 1 - i : _perm[i];
            if (p < 0 || p >= r || seen[p]) throw Bad($"perm [{string.Join(", ", _perm ?? [])}] is not a permutation of 0..{r - 1}");
            seen[p] = true;
            _p[i] = (int)p;
        }
        var shape = new long[r];
        for (int i = 0; i < r; i++) shape[i] = x.Shape[_p[i]];
        var strides = Strides(x.Shape);
        var src = PlanData<Data>(s).SrcStrides = new long[r];
        for (int i = 0; i < r; i++) src[i] = strides[_p[i]];
        O(s, 0).Resize(shape, Where);
    }

    public override void Run(OnnxSession s)
    {
        OnnxValue x = V(s, 0), y = O(s, 0);
        var src = PlanData<Data>(s).SrcStrides;
        if (x.IsFloat) Gather(x.Floats, 0, y.Floats, y.Shape, src);
        else Gather<long>(x.Ints, 0, y.Ints, y.Shape, src);
    }

    /// <summary>
    /// dst (dense, shape) [idx] = src[start + sum idx_i * srcStrides_i]: an odometer over dst, rows of the last axis
    /// inner. Strides may be negative (a Slice with negative steps walks back from <paramref name="start"/>).
    /// </summary>
    internal static void Gather<T>(ReadOnlySpan<T> src, long start, Span<T> dst, ReadOnlySpan<long> shape, ReadOnlySpan<long> srcStrides)
    {
        int r = shape.Length;
        if (dst.IsEmpty) return;
        if (r == 0) { dst[0] = src[(int)start]; return; }
        Span<long> idx = stackalloc long[r];
        idx.Clear();
        long inner = shape[r - 1], stride = srcStrides[r - 1], o = 0, baseOff = start;
        while (true)
        {
            for (long i = 0; i < inner; i++) dst[(int)o++] = src[(int)(baseOff + i * stride)];
            int k = r - 2;
            for (; k >= 0; k--)
            {
                baseOff += srcStrides[k];
                if (++idx[k] < shape[k]) break;
                baseOff -= srcStrides[k] * shape[k];
                idx[k] = 0;
            }
            if (k < 0) return;
        }
    }
}

/// <summary>Slice (inputs starts, ends, axes, steps since opset 10; attributes before).</summary>
internal sealed class SliceOp : OnnxOp
{
    private long[]? _startsA, _endsA, _axesA;
    private sealed class Data { public long Offset; public long[] SrcStrides = []; }
    public override bool OutputIsFloat(int k, Func<int, bool> f) => f(0);
    public override IEnumerable<int> MustBeStatic => [1, 2, 3, 4];

    public override void Check(long opset)
    {
        CheckArity(opset < 10 ? 1 : 3, opset < 10 ? 1 : 5);
        if (opset < 10)
        {
            Attr.OnlyKnown(Node, "starts", "ends", "axes");
            _startsA = Attr.Ints(Node, "starts") ?? throw Bad("has no starts");
            _endsA = Attr.Ints(Node, "ends") ?? throw Bad("has no ends");
            _axesA = Attr.Ints(Node, "axes");
        }
        else
        {
            Attr.OnlyKnown(Node);
            if (!Has(1) || !Has(2)) throw Bad("needs starts and ends");
        }
    }

    public override void Plan(OnnxSession s)
    {
        var x = V(s, 0);
        int r = x.Rank;
        ReadOnlySpan<long> starts = _startsA ?? IntegerInput(s, 1, "starts").Ints, ends = _endsA ?? IntegerInput(s, 2, "ends").Ints;
        ReadOnlySpan<long> axes = _axesA ?? (Has(3) ? IntegerInput(s, 3, "axes").Ints : []);
        ReadOnlySpan<long> steps = _startsA is null && Has(4) ? IntegerInput(s, 4, "steps").Ints : [];
        if (ends.Length != starts.Length || (!axes.IsEmpty && axes.Length != starts.Length) || (!steps.IsEmpty && steps.Length != starts.Length))
            throw Bad("starts, ends, axes and steps differ in length");
        var shape = (long[])x.Shape.Clone();
        var strides = Strides(x.Shape);
        var srcStrides = (long[])strides.Clone();
        long offset = 0;
        var done = new bool[r];
        for (int i = 0; i < starts.Length; i++)
        {
            int a = Axis(axes.IsEmpty ? i : axes[i], r, "axis");
            if (done[a]) throw Bad($"axis {a} is sliced twice");
            done[a] = true;
            long dim = x.Shape[a], step = steps.IsEmpty ? 1 : steps[i];
            if (step == 0) throw Bad("a step is 0");
            long st = starts[i], en = ends[i];
            if (st < 0) st += dim;
            if (en < 0) en += dim;
            // Counts without overflow for any int64 step (long.MinValue included): 1 + (distance - 1) / |step|, with
            // the division by a negative step truncating toward zero.
            long count;
            if (step > 0)
            {
                st = Math.Clamp(st, 0, dim); en = Math.Clamp(en, 0, dim);
                count = en > st ? 1 + (en - st - 1) / step : 0;
            }
            else
            {
                st = Math.Clamp(st, -1, dim - 1); en = Math.Clamp(en, -1, dim - 1);
                count = st > en ? 1 - (st - en - 1) / step : 0;
            }
            shape[a] = count;
            if (count > 0) offset += st * strides[a];
            // |step| < dim when count > 1, so the product fits; with one element the stride is never used.
            srcStrides[a] = count > 1 ? strides[a] * step : strides[a];
        }
        var data = PlanData<Data>(s);
        data.Offset = offset; data.SrcStrides = srcStrides;
        O(s, 0).Resize(shape, Where);
    }

    public override void Run(OnnxSession s)
    {
        OnnxValue x = V(s, 0), y = O(s, 0);
        if (y.Count == 0) return;
        var d = PlanData<Data>(s);
        if (x.IsFloat) TransposeOp.Gather(x.Floats, d.Offset, y.Floats, y.Shape, d.SrcStrides);
        else TransposeOp.Gather<long>(x.Ints, d.Offset, y.Ints, y.Shape, d.SrcStrides);
    }
}

internal sealed class ConcatOp : OnnxOp
{
    private long _axisAttr;
    public override bool OutputIsFloat(int k, Func<int, bool> f) => f(0);

    public override void Check(long opset)
    {
        if (In.Length == 0) throw Bad("has no inputs");
        CheckArity(In.Length, int.MaxValue);
        Attr.OnlyKnown(Node, "axis");
        _axisAttr = Attr.Int(Node, "axis", long.MinValue);
        if (_axisAttr == long.MinValue) throw Bad("has no axis");
    }

    public override void Plan(OnnxSession s)
    {
        var x0 = V(s, 0);
        int _axis = Axis(_axisAttr, x0.Rank, "axis");
        var shape = (long[])x0.Shape.Clone();
        shape[_axis] = 0;
        for (int k = 0; k < In.Length; k++)
        {
            var x = V(s, k);
            if (x.IsFloat != x0.IsFloat) throw Bad($"input {k} is {(x.IsFloat ? "a float" : "an integer")} tensor, input 0 {(x0.IsFloat ? "a float" : "an integer")} one");
            if (x.Rank != x0.Rank) throw Bad($"input {k} has rank {x.Rank}, input 0 rank {x0.Rank}");
            for (int i = 0; i < x.Rank; i++)
                if (i != _axis && x.Shape[i] != x0.Shape[i]) throw Bad($"input {k} {x.ShapeText} does not match input 0 {x0.ShapeText} off axis {_axis}");
            shape[_axis] += x.Shape[_axis];
        }
        O(s, 0).Resize(shape, Where);
    }

    public override void Run(OnnxSession s)
    {
        var y = O(s, 0);
        int _axis = Axis(_axisAttr, y.Rank, "axis");
        long outer = 1;
        for (int i = 0; i < _axis; i++) outer *= y.Shape[i];
        long rowOut = y.Count / Math.Max(outer, 1), col = 0;
        for (int k = 0; k < In.Length; k++)
        {
            var x = V(s, k);
            long row = outer == 0 ? 0 : x.Count / outer;
            for (long o = 0; o < outer; o++)
            {
                if (x.IsFloat) x.Floats.Slice((int)(o * row), (int)row).CopyTo(y.Floats[(int)(o * rowOut + col)..]);
                else x.Ints.Slice((int)(o * row), (int)row).CopyTo(y.Ints[(int)(o * rowOut + col)..]);
            }
            col += row;
        }
    }
}

internal sealed class GatherOp : OnnxOp
{
    private long _axisAttr;
    public override bool OutputIsFloat(int k, Func<int, bool> f) => f(0);

    public override void Check(long opset)
    {
        CheckArity(2, 2);
        Attr.OnlyKnown(Node, "axis");
        _axisAttr = Attr.Int(Node, "axis", 0);
    }

    public override void Plan(OnnxSession s)
    {
        OnnxValue x = V(s, 0), idx = V(s, 1);
        if (idx.IsFloat) throw Bad("indices must be integers");
        int _axis = Axis(_axisAttr, x.Rank, "axis");
        var shape = new List<long>();
        shape.AddRange(x.Shape.AsSpan(0, _axis));
        shape.AddRange(idx.Shape);
        shape.AddRange(x.Shape.AsSpan(_axis + 1));
        O(s, 0).Resize(shape.ToArray(), Where);
    }

    public override void Run(OnnxSession s)
    {
        OnnxValue x = V(s, 0), idx = V(s, 1), y = O(s, 0);
        int _axis = Axis(_axisAttr, x.Rank, "axis");
        long outer = 1, inner = 1, dim = x.Shape[_axis];
        for (int i = 0; i < _axis; i++) outer *= x.Shape[i];
        for (int i = _axis + 1; i < x.Rank; i++) inner *= x.Shape[i];
        var ind = idx.Ints;
        long o = 0;
        for (long a = 0; a < outer; a++)
            for (int j = 0; j < ind.Length; j++)
            {
                long k = ind[j] < 0 ? ind[j] + dim : ind[j];
                if (k < 0 || k >= dim) throw Bad($"index {ind[j]} is outside [-{dim}, {dim - 1}]");
                int src = (int)((a * dim + k) * inner);
                if (x.IsFloat) x.Floats.Slice(src, (int)inner).CopyTo(y.Floats[(int)o..]);
                else x.Ints.Slice(src, (int)inner).CopyTo(y.Ints[(int)o..]);
                o += inner;
            }
    }
}

/// <summary>Add with numpy broadcasting.</summary>
internal sealed class AddOp : OnnxOp
{
    private sealed class Data { public long[] Sa = [], Sb = []; }
    public override bool OutputIsFloat(int k, Func<int, bool> f) => f(0);

    public override void Check(long opset)
    {
        CheckArity(2, 2);
        Attr.OnlyKnown(Node);
    }

    public override void Plan(OnnxSession s)
    {
        OnnxValue a = V(s, 0), b = V(s, 1);
        if (a.IsFloat != b.IsFloat) throw Bad("adds a float tensor to an integer one");
        int r = Math.Max(a.Rank, b.Rank);
        var shape = new long[r];
        var data = PlanData<Data>(s);
        long[] _sa = data.Sa = new long[r], _sb = data.Sb = new long[r];
        long[] stA = Strides(a.Shape), stB = Strides(b.Shape);
        for (int i = 0; i < r; i++)
        {
            int ia = i - (r - a.Rank), ib = i - (r - b.Rank);
            long da = ia >= 0 ? a.Shape[ia] : 1, db = ib >= 0 ? b.Shape[ib] : 1;
            if (da != db && da != 1 && db != 1) throw Bad($"cannot broadcast {a.ShapeText} with {b.ShapeText}");
            shape[i] = da == 1 ? db : da;
            _sa[i] = da == 1 || ia < 0 ? 0 : stA[ia];
            _sb[i] = db == 1 || ib < 0 ? 0 : stB[ib];
        }
        O(s, 0).Resize(shape, Where);
    }

    public override void Run(OnnxSession s)
    {
        OnnxValue a = V(s, 0), b = V(s, 1), y = O(s, 0);
        var data = PlanData<Data>(s);
        long[] _sa = data.Sa, _sb = data.Sb;
        int r = y.Rank;
        long n = y.Count;
        if (n == 0) return;
        Span<long> idx = stackalloc long[Math.Max(r, 1)];
        idx.Clear();
        long oa = 0, ob = 0;
        for (long o = 0; o < n; o++)
        {
            if (a.IsFloat) y.F[o] = a.F[oa] + b.F[ob]; else y.I[o] = a.I[oa] + b.I[ob];
            for (int k = r - 1; k >= 0; k--)
            {
                oa += _sa[k]; ob += _sb[k];
                if (++idx[k] < y.Shape[k]) break;
                oa -= _sa[k] * y.Shape[k]; ob -= _sb[k] * y.Shape[k];
                idx[k] = 0;
            }
        }
    }
}

/// <summary>MatMul with a 2-D right operand ((..., M, K) x (K, N)), and Gemm (2-D, transA/transB, alpha, beta, broadcast C).</summary>
internal sealed class MatMulOp : OnnxOp
{
    private readonly bool _gemm;
    private bool _ta, _tb;
    private float _alpha = 1, _beta = 1;
    private sealed class Data { public int M, N, K; public long[] Sc = []; }

    public MatMulOp(bool gemm) => _gemm = gemm;
    public override bool OutputIsFloat(int k, Func<int, bool> f) => true;

    public override void Check(long opset)
    {
        CheckArity(2, _gemm ? 3 : 2);
        if (!_gemm) { Attr.OnlyKnown(Node); return; }
        Attr.OnlyKnown(Node, "alpha", "beta", "transA", "transB");
        _ta = Attr.Int(Node, "transA", 0) != 0; _tb = Attr.Int(Node, "transB", 0) != 0;
        _alpha = Attr.Float(Node, "alpha", 1); _beta = Attr.Float(Node, "beta", 1);
    }

    public override void Plan(OnnxSession s)
    {
        OnnxValue a = V(s, 0), b = V(s, 1);
        if (!a.IsFloat || !b.IsFloat) throw Unsupported("integer matrix product");
        if (b.Rank != 2) throw Unsupported($"a right operand of rank {b.Rank} (2 is supported)");
        if (_gemm && a.Rank != 2) throw Bad($"A has rank {a.Rank}, expected 2");
        if (a.Rank < 1) throw Bad("A is a scalar");
        long m = 1;
        if (_gemm) m = _ta ? a.Shape[1] : a.Shape[0];
        else for (int i = 0; i < a.Rank - 1; i++) m *= a.Shape[i];
        long k = _gemm && _ta ? a.Shape[0] : a.Shape[^1];
        long kb = _tb ? b.Shape[1] : b.Shape[0], n = _tb ? b.Shape[0] : b.Shape[1];
        if (k != kb) throw Bad($"inner dimensions differ: A {a.ShapeText}, B {b.ShapeText}");
        if (m > int.MaxValue || n > int.MaxValue || k > int.MaxValue) throw Bad("matrix too large");
        var data = PlanData<Data>(s);
        (data.M, data.N, data.K) = ((int)m, (int)n, (int)k);
        long[] shape = _gemm ? [m, n] : [.. a.Shape.AsSpan(0, a.Rank - 1), n];
        if (!_gemm && a.Rank == 1) shape = [n];
        O(s, 0).Resize(shape, Where);
        if (_gemm && Has(2))
        {
            var c = V(s, 2);
            if (!c.IsFloat || c.Rank > 2) throw Bad($"C {c.ShapeText} does not broadcast to [{m}, {n}]");
            long cm = c.Rank == 2 ? c.Shape[0] : 1, cn = c.Rank >= 1 ? c.Shape[^1] : 1;
            if ((cm != 1 && cm != m) || (cn != 1 && cn != n)) throw Bad($"C {c.ShapeText} does not broadcast to [{m}, {n}]");
            data.Sc = [cm == 1 ? 0 : cn, cn == 1 ? 0 : 1];
        }
    }

    public override void Run(OnnxSession s)
    {
        OnnxValue a = V(s, 0), b = V(s, 1), y = O(s, 0);
        var data = PlanData<Data>(s);
        int _m = data.M, _n = data.N, _k = data.K;
        var _sc = data.Sc;
        float beta = 0;
        if (_gemm && Has(2) && _beta != 0)
        {
            var c = V(s, 2).F;
            for (int i = 0; i < _m; i++)
                for (int j = 0; j < _n; j++) y.F[(long)i * _n + j] = _beta * c[i * _sc[0] + j * _sc[1]];
            beta = 1;
        }
        s.Kernels.Gemm(_ta, _tb, _m, _n, _k, _alpha, a.Floats, _ta ? _m : _k, b.Floats, _tb ? _k : _n, beta, y.Floats, _n);
    }
}
