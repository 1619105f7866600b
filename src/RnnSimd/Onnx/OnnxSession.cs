using RnnSimd.Kernels;

namespace RnnSimd.Onnx;

/// <summary>
/// The buffers one thread runs an <see cref="OnnxModel"/> with. Set every input (<see cref="SetInput(int, ReadOnlySpan{float}, ReadOnlySpan{long})"/>),
/// <see cref="Run()"/>, read the outputs. The first run with a set of input shapes plans every tensor's buffer (and runs
/// the nodes that depend only on shapes and constants); later runs with the same shapes allocate nothing. Not
/// thread-safe: one session per thread (sessions of one model may run at once).
/// </summary>
public sealed class OnnxSession
{
    internal readonly OnnxValue[] Values;
    internal readonly object?[] OpState;
    internal readonly KernelSet Kernels = KernelSet.Default;
    private readonly bool[] _inputSet;
    private bool _planned;

    internal OnnxSession(OnnxModel model)
    {
        Model = model;
        Values = new OnnxValue[model.Slots.Length];
        for (int i = 0; i < Values.Length; i++)
        {
            var (name, isFloat, type) = model.Slots[i];
            Values[i] = model.Shared[i] ?? new OnnxValue(name, isFloat, type) { Session = this };
        }
        OpState = new object?[model.Ops.Length];
        _inputSet = new bool[model.InputSlots.Length];
    }

    /// <summary>The bytes of every buffer this session has allocated so far (tensors and the nodes' scratch).</summary>
    public long BufferBytes => _bytes;

    private long _bytes;

    /// <summary>
    /// Counts a new buffer of <paramref name="bytes"/> against <see cref="Layers.RecurrentOptions.MemoryBudget"/> for the
    /// whole session, before it is allocated: a model whose planned buffers add up to more fails naming the node.
    /// </summary>
    internal void Charge(long bytes, string owner)
    {
        long total = _bytes + bytes;
        if (total > Layers.RecurrentOptions.MemoryBudget)
            throw new InvalidDataException($"{owner}: this session's buffers would need {total:N0} bytes in all, above RecurrentOptions.MemoryBudget = {Layers.RecurrentOptions.MemoryBudget:N0}.");
        _bytes = total;
    }

    /// <summary>Grows a node's scratch array to <paramref name="n"/> elements, counted against the session's budget.</summary>
    internal void Grow<T>(ref T[] a, int n, string owner)
    {
        if (a.Length >= n) return;
        Charge(((long)n - a.Length) * System.Runtime.CompilerServices.Unsafe.SizeOf<T>(), owner);
        a = new T[n];
    }

    /// <summary>The model this session runs.</summary>
    public OnnxModel Model { get; }

    /// <summary>Copies a float input (graph input <paramref name="index"/>, in <see cref="OnnxModel.Inputs"/> order) of <paramref name="shape"/>.</summary>
    /// <exception cref="ArgumentException">The input is not a float input, the shape does not match the declared one, or the data's length is not the shape's product.</exception>
    public void SetInput(int index, ReadOnlySpan<float> data, ReadOnlySpan<long> shape)
    {
        var v = Prepare(index, shape, data.Length, isFloat: true);
        data.CopyTo(v.F);
    }

    /// <summary>Copies an integer input (e.g. sequence_lens).</summary>
    /// <exception cref="ArgumentException">The input is not an integer input, or the shape or length does not match.</exception>
    public void SetInput(int index, ReadOnlySpan<int> data, ReadOnlySpan<long> shape)
    {
        var v = Prepare(index, shape, data.Length, isFloat: false);
        for (int i = 0; i < data.Length; i++) v.I[i] = data[i];
    }

    /// <summary>Copies an integer input given as int64.</summary>
    public void SetInput(int index, ReadOnlySpan<long> data, ReadOnlySpan<long> shape)
    {
        var v = Prepare(index, shape, data.Length, isFloat: false);
        data.CopyTo(v.I);
    }

    /// <summary>Copies an input given as a tensor, found by its name.</summary>
    /// <exception cref="ArgumentException">The model has no such input, or the tensor does not fit it.</exception>
    public void SetInput(string name, OnnxTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        int index = IndexOf(Model.Inputs, name, "input");
        if (tensor.Floats is not null) SetInput(index, tensor.Floats, tensor.Dims);
        else if (tensor.Integers is not null) SetInput(index, tensor.Integers, tensor.Dims);
        else throw new ArgumentException($"input '{name}' is a double tensor; float32 and integer inputs are supported.", nameof(tensor));
    }

    private static int IndexOf(IReadOnlyList<OnnxValueInfo> list, string name, string what)
    {
        for (int i = 0; i < list.Count; i++) if (list[i].Name == name) return i;
        throw new ArgumentException($"the model has no {what} named '{name}'; its {what}s are {string.Join(", ", list.Select(v => v.Name))}.", nameof(name));
    }

    private OnnxValue Prepare(int index, ReadOnlySpan<long> shape, int length, bool isFloat)
    {
        if ((uint)index >= (uint)_inputSet.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the model has {_inputSet.Length} inputs.");
        var info = Model.Inputs[index];
        var v = Values[Model.InputSlots[index]];
        if (v.IsFloat != isFloat)
            throw new ArgumentException($"input '{info.Name}' is {info.ElementType}, given {(isFloat ? "floats" : "integers")}.", nameof(index));
        if (info.Shape is { } declared)
        {
            bool ok = declared.Length == shape.Length;
            for (int i = 0; ok && i < shape.Length; i++) ok = declared[i].Value < 0 || declared[i].Value == shape[i];
            if (!ok) throw new ArgumentException($"input '{info.Name}' has shape [{string.Join(", ", shape.ToArray())}], expected {info}.", nameof(shape));
        }
        long count;
        try { count = OnnxTensor.CheckedCount(shape, info.Name); }
        catch (ArgumentException e) { throw new ArgumentException(e.Message, nameof(shape)); }
        if (count != length)
            throw new ArgumentException($"input '{info.Name}' has {length} values, expected {count} for shape [{string.Join(", ", shape.ToArray())}].", nameof(shape));
        if (!_inputSet[index] || !shape.SequenceEqual(v.Shape))
        {
            _planned = false;
            v.Resize(shape, $"input '{info.Name}'");
        }
        _inputSet[index] = true;
        return v;
    }

    /// <summary>Runs the graph on the inputs set. Allocates only when the input shapes differ from the last run's.</summary>
    /// <exception cref="InvalidOperationException">An input has not been set.</exception>
    /// <exception cref="InvalidDataException">The inputs do not fit the graph (a node names what does not match).</exception>
    public void Run()
    {
        for (int i = 0; i < _inputSet.Length; i++)
            if (!_inputSet[i]) throw new InvalidOperationException($"input '{Model.Inputs[i].Name}' has not been set.");
        if (!_planned)
        {
            foreach (var op in Model.Ops)
            {
                op.Plan(this);
                if (op.PlanStatic) op.Run(this);
            }
            _planned = true;
        }
        foreach (var op in Model.Ops)
            if (!op.PlanStatic) op.Run(this);
    }

    /// <summary>Sets the inputs (in <see cref="OnnxModel.Inputs"/> order), runs, and returns copies of the outputs.</summary>
    public OnnxTensor[] Run(IReadOnlyList<OnnxTensor> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count != Model.Inputs.Count)
            throw new ArgumentException($"{inputs.Count} inputs given, the model has {Model.Inputs.Count}.", nameof(inputs));
        for (int i = 0; i < inputs.Count; i++) SetInput(Model.Inputs[i].Name, inputs[i]);
        Run();
        return Enumerable.Range(0, Model.Outputs.Count).Select(Output).ToArray();
    }

    /// <summary>Output <paramref name="index"/>'s float data (valid until the next run).</summary>
    /// <exception cref="InvalidOperationException">The output is an integer tensor.</exception>
    public ReadOnlySpan<float> OutputFloats(int index)
    {
        var v = Out(index);
        if (!v.IsFloat) throw new InvalidOperationException($"output '{v.Name}' is an integer tensor.");
        return v.Floats;
    }

    /// <summary>Output <paramref name="index"/>'s shape.</summary>
    public ReadOnlySpan<long> OutputShape(int index) => Out(index).Shape;

    /// <summary>A copy of output <paramref name="index"/> as a tensor named as the graph names it.</summary>
    public OnnxTensor Output(int index)
    {
        var v = Out(index);
        var t = v.ToTensor();
        return t.Name == Model.Outputs[index].Name ? t
            : v.IsFloat ? OnnxTensor.FromFloats(Model.Outputs[index].Name, t.Floats!, t.Dims)
            : OnnxTensor.FromIntegers(Model.Outputs[index].Name, t.DataType, t.Integers!, t.Dims);
    }

    private OnnxValue Out(int index)
    {
        if ((uint)index >= (uint)Model.OutputSlots.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the model has {Model.OutputSlots.Length} outputs.");
        if (!_planned) throw new InvalidOperationException("the session has not run yet.");
        return Values[Model.OutputSlots[index]];
    }
}
