using System.Globalization;
using RnnSimd.IO;
using RnnSimd.Layers;
using RnnSimd.Training;

namespace RnnSimd.Cli;

/// <summary>
/// A character LM for inference: the recurrent network (float32, bf16 or int8), its float32 output head and the
/// vocabulary. Read from a training checkpoint (float32) or from the reduced file <c>rnnsimd quantize</c> writes of one:
/// the checkpoint's metadata without the training state (<see cref="TrainingStateKeys"/>) plus <c>precision</c>, the
/// network's tensors under "rnn." in their stored form (<see cref="StateDict.StoredTensors"/>), "head.weight" and
/// "head.bias" in F32.
/// </summary>
internal sealed record CharLmModel(RecurrentNetwork Network, Linear Head, int[] Vocabulary, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>Checkpoint metadata that only resuming training needs; a reduced file, which cannot be trained, drops it.</summary>
    public static readonly string[] TrainingStateKeys = ["format", "rng", "cursors", "optimizer_step", "kernels"];

    /// <summary>Loads a checkpoint or reduced char-LM file, checking every tensor before the network is built.</summary>
    /// <exception cref="InvalidDataException">Not a char-LM file, a bad value, or non-finite weights; the message names the file.</exception>
    public static CharLmModel Load(string path)
    {
        SafeTensorsFile file;
        try { file = SafeTensorsFile.Read(path); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        var m = file.Metadata;
        if (!m.TryGetValue("task", out var task) || task != "charlm" || !m.ContainsKey("vocabulary"))
            throw new InvalidDataException($"{path} is not a character-LM checkpoint.");
        var config = CheckpointMetadata.Config(path, m);
        var precision = StateDict.ReadPrecision(m, path);
        if (precision == Precision.Float32) CheckpointMetadata.CheckNetworkTensors(path, config, file.Tensors); // reduced: LoadNetwork's check
        int[] vocab = CheckpointMetadata.Vocabulary(path, m);
        RecurrentOptions options;
        try
        {
            options = new RecurrentOptions(config.Cell, vocab.Length, config.Hidden, config.Layers);
            options.Validate();
        }
        catch (ArgumentException ex) { throw new InvalidDataException($"{path}: the checkpoint's network cannot be built: {ex.Message}", ex); }
        var net = StateDict.LoadNetwork(file, options, path, "rnn.");
        int hout = options.OutputHidden, v = vocab.Length;
        foreach (var (name, shape) in new[] { ("head.weight", new long[] { v, hout }), ("head.bias", new long[] { v }) })
        {
            file.TryGetTensor(name, out var t);
            if (t is null || !t.DType.IsReadableAsFloat() || !t.Shape.SequenceEqual(shape))
                throw new InvalidDataException($"{path}: '{name}' is {(t is null ? "missing" : $"{t.DType.ToFormatString()} {t.ShapeString}")}, "
                    + $"expected F32 [{string.Join(", ", shape)}] (the output head, float32 in every precision).");
        }
        var head = new Linear(hout, v, 0, net.Kernels);
        foreach (var en in head.Parameters.Entries) file.ReadFloats("head." + en.Name, head.Parameters.View(en));
        head.ParametersChanged();
        var groups = new[] { new ParameterGroup("rnn.", net.Parameters, net.Gradients), new ParameterGroup("head.", head.Parameters, head.Gradients) };
        if (NonFiniteCheck.FindParameter(groups) is { } bad)
            throw new InvalidDataException($"{path}: parameter {bad.Name} [{bad.Index}] is {bad.Value.ToString(CultureInfo.InvariantCulture)}; a model with non-finite weights cannot be sampled.");
        return new CharLmModel(net, head, vocab, m);
    }

    /// <summary>
    /// This model in <paramref name="precision"/>: itself when null or already so, else the float32 network converted
    /// (<see cref="RecurrentNetwork.ToInference"/>; the head stays float32).
    /// </summary>
    /// <exception cref="ArgumentException">A reduced model asked for another precision (it converts only from float32).</exception>
    public CharLmModel In(Precision? precision, string path)
    {
        if (precision is not { } p || p == Network.Precision) return this;
        if (Network.Precision != Precision.Float32)
            throw new ArgumentException($"{path} is a {Network.Precision.Name()} model; --precision {p.Name()} needs the float32 checkpoint it was made from.");
        return this with { Network = Network.ToInference(p) };
    }

    /// <summary>Writes the model (atomically) as a char-LM file in its network's precision: see the type's summary.</summary>
    public void Save(string path)
    {
        var meta = Metadata.Where(kv => !TrainingStateKeys.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
        meta.Remove(StateDict.PrecisionKey);
        if (Network.Precision != Precision.Float32) meta[StateDict.PrecisionKey] = Network.Precision.Name();
        var tensors = StateDict.StoredTensors(Network, "rnn.").Concat(Head.Parameters.Entries.Select(e =>
            SafeTensor.F32("head." + e.Name, e.Shape, Head.Parameters.Data.AsMemory(e.Offset, e.Length))));
        SafeTensorsWriter.WriteTensors(path, tensors, meta);
    }
}
