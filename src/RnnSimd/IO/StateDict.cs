using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.IO;

/// <summary>
/// Moves a <see cref="RecurrentNetwork"/>'s parameters to and from safetensors files holding a PyTorch state_dict
/// (what <c>safetensors.torch.save_file(model.state_dict(), path)</c> writes), under PyTorch's names and shapes; and, for
/// a reduced-precision network, its stored bf16 or int8 weights (<c>StateDict.Reduced.cs</c>).
/// </summary>
public static partial class StateDict
{
    /// <summary>
    /// Loads every parameter of <paramref name="network"/> from <paramref name="file"/> (names prefixed by
    /// <paramref name="prefix"/>, e.g. "rnn." for a submodule). Every name must be present with exactly the expected
    /// shape; nothing is changed unless all are.
    /// </summary>
    /// <exception cref="InvalidDataException">A name is missing or a shape differs; the message lists expected vs found.</exception>
    public static void Load(RecurrentNetwork network, SafeTensorsFile file, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(file);
        var problems = new List<string>();
        foreach (var e in network.Parameters.Entries)
        {
            string name = prefix + e.Name;
            if (!file.TryGetTensor(name, out var t))
            {
                problems.Add($"missing '{name}', expected shape {e.ShapeText}");
                continue;
            }
            if (!t.Shape.SequenceEqual(e.Shape.Select(d => (long)d)))
                problems.Add($"'{name}' has shape ({string.Join(", ", t.Shape)}), expected {e.ShapeText}");
            else if (!t.DType.IsReadableAsFloat())
                problems.Add($"'{name}' has dtype {t.DType.ToFormatString()}, expected F32, F64, F16 or BF16");
        }
        if (problems.Count > 0)
            throw new InvalidDataException(
                $"the file does not hold a {network.Options.CellName} state_dict of this shape: {string.Join("; ", problems.Take(5))}"
                + (problems.Count > 5 ? $"; and {problems.Count - 5} more problems." : "."));
        foreach (var e in network.Parameters.Entries) file.ReadFloats(prefix + e.Name, network.Parameters.View(e));
        network.ParametersChanged();
    }

    /// <summary>
    /// Checks, before any network is built, that <paramref name="file"/> can hold the parameters of a network of
    /// <paramref name="options"/> (names prefixed by <paramref name="prefix"/>): as many weight and bias tensors as the
    /// options need, and as many floats in them. Cost O(tensors in the file), whatever the options say, so metadata
    /// that describes a huge network (num_layers = 1000000) fails here instead of allocating it.
    /// </summary>
    /// <exception cref="InvalidDataException">The file holds fewer or more parameter tensors or floats than the options need.</exception>
    public static void CheckHolds(SafeTensorsFile file, RecurrentOptions options, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(options);
        var o = options;
        long units = (long)o.NumLayers * o.Directions;
        long perUnit = 2 + (o.Bias ? 2 : 0) + (o.ProjSize > 0 ? 1 : 0) + (o.Peepholes ? 1 : 0);
        long gh = (long)o.GateCount * o.HiddenSize, hout = o.OutputHidden;
        decimal floats = 0;
        for (int l = 0; l < Math.Min(o.NumLayers, 2); l++) // layers >= 1 all have the same size as layer 1
        {
            decimal layer = o.Directions * ((decimal)gh * o.LayerInput(l) + (decimal)gh * hout + (o.Bias ? 2m * gh : 0) + (decimal)o.ProjSize * o.HiddenSize
                + (o.Peepholes ? 3m * o.HiddenSize : 0));
            floats += l == 0 ? layer : layer * (o.NumLayers - 1);
        }
        long count = 0, held = 0;
        foreach (var t in file.Tensors)
        {
            if (!t.Name.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var rest = t.Name.AsSpan(prefix.Length);
            if (!rest.StartsWith("weight_") && !rest.StartsWith("bias_")) continue;
            count++;
            held += t.ElementCount;
        }
        if (count != units * perUnit || held != floats)
            throw new InvalidDataException(
                $"the metadata describes a {o.CellName} network of {o.NumLayers} layer(s) x {o.Directions} direction(s), hidden {o.HiddenSize}, input {o.InputSize}: "
                + $"{units * perUnit} parameter tensors of {floats} floats; the file holds {count} '{prefix}weight_*' / '{prefix}bias_*' tensors of {held} floats.");
    }

    /// <summary>The parameters as (name, shape, data) in state_dict order, for <see cref="SafeTensorsWriter"/>.</summary>
    public static IEnumerable<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> Tensors(RecurrentNetwork network, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(network);
        foreach (var e in network.Parameters.Entries)
            yield return (prefix + e.Name, e.Shape, network.Parameters.Data.AsMemory(e.Offset, e.Length));
    }

    /// <summary>
    /// Saves the parameters (atomically), with the network's shape in the metadata: a float32 network as an F32
    /// state_dict; a bf16 or int8 network (<see cref="RecurrentNetwork.ToInference"/>) in its stored form, with
    /// metadata <c>precision</c> (<see cref="StoredTensors"/>), which <see cref="Read(string, KernelSet?)"/> loads.
    /// </summary>
    public static void Save(RecurrentNetwork network, string path, IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        var meta = Describe(network.Options);
        if (network.Precision != Precision.Float32) meta[PrecisionKey] = network.Precision.Name();
        if (extraMetadata is not null) foreach (var kv in extraMetadata) meta[kv.Key] = kv.Value;
        SafeTensorsWriter.WriteTensors(path, StoredTensors(network), meta);
    }

    /// <summary>
    /// The options as string metadata (cell, input_size, hidden_size, num_layers, bidirectional, bias, proj_size,
    /// gru_linear_before_reset, reverse, peepholes, coupled_input_forget, activation_f, activation_g, activation_h, clip).
    /// An activation is "sigmoid", "tanh", "relu" or "default" (null: the cell's default); clip is the float's shortest
    /// round-trip text ("0": none).
    /// </summary>
    public static Dictionary<string, string> Describe(RecurrentOptions o) => new()
    {
        ["cell"] = o.CellName,
        ["input_size"] = o.InputSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["hidden_size"] = o.HiddenSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["num_layers"] = o.NumLayers.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["bidirectional"] = o.Bidirectional ? "true" : "false",
        ["bias"] = o.Bias ? "true" : "false",
        ["proj_size"] = o.ProjSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["gru_linear_before_reset"] = o.GruLinearBeforeReset ? "true" : "false",
        ["reverse"] = o.Reverse ? "true" : "false",
        ["peepholes"] = o.Peepholes ? "true" : "false",
        ["coupled_input_forget"] = o.CoupledInputForget ? "true" : "false",
        ["activation_f"] = ActivationName(o.ActivationF),
        ["activation_g"] = ActivationName(o.ActivationG),
        ["activation_h"] = ActivationName(o.ActivationH),
        ["clip"] = o.Clip.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string ActivationName(GateActivation? a) => a switch
    {
        null => "default",
        GateActivation.Sigmoid => "sigmoid",
        GateActivation.Tanh => "tanh",
        GateActivation.Relu => "relu",
        _ => throw new ArgumentException($"{(int)a} is not a GateActivation.", nameof(a)),
    };

    /// <summary>Reads options from metadata written by <see cref="Describe"/> (or a CASE file); absent optional keys take PyTorch's defaults.</summary>
    /// <exception cref="InvalidDataException">A required key is missing or a value is malformed.</exception>
    public static RecurrentOptions ReadOptions(IReadOnlyDictionary<string, string> meta)
    {
        string Req(string k) => meta.TryGetValue(k, out var v) ? v : throw new InvalidDataException($"metadata key '{k}' is missing.");
        int Int(string k, int? dflt = null)
        {
            if (!meta.TryGetValue(k, out var v))
                return dflt ?? throw new InvalidDataException($"metadata key '{k}' is missing.");
            return int.TryParse(v, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n)
                ? n : throw new InvalidDataException($"metadata '{k}' = '{v}' is not a non-negative integer.");
        }
        bool Bool(string k, bool dflt) => !meta.TryGetValue(k, out var v) ? dflt : v switch
        {
            "true" or "True" or "1" => true,
            "false" or "False" or "0" => false,
            _ => throw new InvalidDataException($"metadata '{k}' = '{v}' is not true or false."),
        };
        GateActivation? Activation(string k) => !meta.TryGetValue(k, out var v) ? null : v.ToLowerInvariant() switch
        {
            "default" => null,
            "sigmoid" => GateActivation.Sigmoid,
            "tanh" => GateActivation.Tanh,
            "relu" => GateActivation.Relu,
            _ => throw new InvalidDataException($"metadata '{k}' = '{v}' is not sigmoid, tanh, relu or default."),
        };
        float Clip()
        {
            if (!meta.TryGetValue("clip", out var v)) return 0;
            return float.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float c)
                ? c : throw new InvalidDataException($"metadata 'clip' = '{v}' is not a number.");
        }
        CellType cell;
        try { cell = RecurrentOptions.ParseCell(Req("cell")); }
        catch (ArgumentException e) { throw new InvalidDataException(e.Message); }
        var o = new RecurrentOptions(cell, Int("input_size"), Int("hidden_size"), Int("num_layers", 1),
            Bool("bidirectional", false), Bool("bias", true), Int("proj_size", 0), Bool("gru_linear_before_reset", true),
            Bool("reverse", false), Bool("peepholes", false), Bool("coupled_input_forget", false),
            Activation("activation_f"), Activation("activation_g"), Activation("activation_h"), Clip());
        try { o.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"invalid network shape in metadata: {e.Message}"); }
        return o;
    }
}
