using System.CommandLine;
using System.Globalization;
using RnnSimd.IO;
using RnnSimd.Kernels;
using RnnSimd.Layers;
using RnnSimd.Onnx;

namespace RnnSimd.Cli;

/// <summary>
/// <c>rnnsimd quantize IN OUT --precision bf16|int8</c>: a float32 model (an RnnSimd or PyTorch state_dict, a charlm
/// checkpoint, an ONNX model) to a reduced-precision safetensors file (<see cref="StateDict.StoredTensors"/>; a charlm
/// checkpoint keeps its head float32, <see cref="CharLmModel"/>); and the precision lines of <c>rnnsimd info</c>.
/// </summary>
internal static class QuantizeCommand
{
    public static Command Create(TextWriter o)
    {
        var input = new Argument<string>("in")
        {
            Description = "A float32 model: a state_dict .safetensors (RnnSimd's, or PyTorch's with --cell), a charlm checkpoint, or an .onnx model.",
        };
        var output = new Argument<string>("out") { Description = "The .safetensors file to write, in the reduced precision." };
        var precision = new Option<string>("--precision") { Description = "bf16 or int8.", Required = true };
        precision.Validators.Add(r =>
        {
            string value = r.GetValueOrDefault<string>() ?? "";
            try
            {
                if (PrecisionNames.Parse(value, "--precision") == Precision.Float32)
                    r.AddError("--precision float32 is what the input already is; quantize takes bf16 or int8.");
            }
            catch (ArgumentException ex) { r.AddError(ex.Message); }
        });
        var cell = new Option<string?>("--cell") { Description = "lstm, gru, rnn_tanh or rnn_relu: the cell of a state_dict whose metadata does not say (as PyTorch writes it)." };
        cell.AcceptOnlyFromAmong("lstm", "gru", "rnn_tanh", "rnn_relu");
        var prefix = new Option<string>("--prefix") { Description = "Name prefix of the recurrent module's tensors in a PyTorch state_dict (e.g. \"rnn.\").", DefaultValueFactory = _ => "" };
        var command = new Command("quantize", "Convert a float32 model to bf16 or int8 weights (biases, peepholes and a charlm head stay float32) and write it as safetensors.")
            { input, output, precision, cell, prefix };
        command.SetAction(pr => Run(pr.GetValue(input)!, pr.GetValue(output)!, PrecisionNames.Parse(pr.GetValue(precision)!, "--precision"),
            pr.GetValue(cell), pr.GetValue(prefix)!, o));
        return command;
    }

    private static int Run(string input, string output, Precision precision, string? cell, string prefix, TextWriter o)
    {
        if (!output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"quantize writes a .safetensors file; got '{output}'.");
        RecurrentNetwork net, reduced;
        string what;
        if (input.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            net = OnnxModel.Load(input).ToNetwork();
            reduced = Convert(net, precision, input);
            StateDict.Save(reduced, output);
            what = "state_dict";
        }
        else
        {
            SafeTensorsFile file;
            try { file = SafeTensorsFile.Read(input); }
            catch (InvalidDataException e) { throw new InvalidDataException($"{input}: {e.Message}", e); }
            var had = StateDict.ReadPrecision(file.Metadata, input);
            if (had != Precision.Float32)
                throw new InvalidDataException($"{input} is already {had.Name()} (metadata '{StateDict.PrecisionKey}'); quantize takes a float32 model.");
            if (file.Metadata.TryGetValue("task", out var task))
            {
                if (task != "charlm")
                    throw new InvalidDataException($"{input} is a '{Training.CheckpointMetadata.Shown(task)}' training checkpoint; quantize takes a state_dict, a charlm checkpoint or an ONNX model.");
                var model = CharLmModel.Load(input);
                net = model.Network;
                var q = model with { Network = Convert(net, precision, input) };
                reduced = q.Network;
                q.Save(output);
                what = "charlm model (head.weight and head.bias stay float32)";
            }
            else
            {
                var options = file.Metadata.ContainsKey("cell") && cell is null ? ReadOptions(file, input)
                    : Commands.InferOptions(file, cell ?? throw new ArgumentException($"'{input}' does not say which cell it holds (no 'cell' metadata): give --cell."), prefix);
                net = StateDict.LoadNetwork(file, options, input, prefix);
                reduced = Convert(net, precision, input);
                StateDict.Save(reduced, output);
                what = "state_dict";
            }
        }
        var opt = net.Options;
        long before = new FileInfo(input).Length, after = new FileInfo(output).Length;
        o.WriteLine($"{input} -> {output}: {precision.Name()} {what}; {opt.CellName}, {opt.NumLayers} layer(s), input {opt.InputSize}, hidden {opt.HiddenSize}"
            + (opt.ProjSize > 0 ? $", proj {opt.ProjSize}" : "") + (opt.Bidirectional ? ", bidirectional" : opt.Reverse ? ", reverse" : ""));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"file: {before:N0} -> {after:N0} bytes ({(double)after / before:P1})"));
        long floatWeights = 4L * net.Parameters.Entries.Where(e => RecurrentNetwork.IsWeightMatrix(e.Name)).Sum(e => (long)e.Length);
        long reducedWeights = reduced.GetReducedWeights().Sum(t => t.Bytes);
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"weight matrices: {floatWeights:N0} -> {reducedWeights:N0} bytes{(precision == Precision.Int8 ? " (codes and per-row scales)" : "")}"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"StepWeightBytes (packed weights one batch-1 step reads): {net.StepWeightBytes:N0} -> {reduced.StepWeightBytes:N0}"));
        return 0;
    }

    private static RecurrentNetwork Convert(RecurrentNetwork net, Precision precision, string input)
    {
        try { return net.ToInference(precision); }
        catch (ArgumentException e) { throw new InvalidDataException($"{input}: {e.Message}", e); } // a NaN or infinite weight (int8)
    }

    private static RecurrentOptions ReadOptions(SafeTensorsFile file, string path)
    {
        try { return StateDict.ReadOptions(file.Metadata); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    /// <summary>
    /// For <c>rnnsimd info</c>: per available kernel set, what computes the weight products of each precision (Step,
    /// the multi-stream stepper and inference Forward), and which set runs by default.
    /// </summary>
    public static void PrintPrecisions(TextWriter o)
    {
        o.WriteLine("precisions (weight products of Step, MultiStreamStepper and inference Forward; bitwise the same results at every set for int8):");
        foreach (var set in KernelSet.Supported)
        {
            o.WriteLine($"  {set.Name,-7} float32: {set.Description}");
            o.WriteLine($"  {"",-7} bf16:    {set.Bf16Description}");
            o.WriteLine($"  {"",-7} int8:    {set.Int8Description}");
            o.WriteLine($"  {"",-7} {(set.Isa == KernelIsa.Scalar ? "accelerates none (the scalar twins)" : "accelerates float32, bf16 and int8")}{(set == KernelSet.Default ? "; runs by default" : "")}");
        }
    }
}
