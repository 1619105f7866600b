using System.CommandLine;
using System.Globalization;
using RnnSimd.IO;
using RnnSimd.Layers;
using RnnSimd.Onnx;

namespace RnnSimd.Cli;

/// <summary>onnx-run, onnx-test and convert; inspect of .onnx files lives here too.</summary>
internal static partial class Commands
{
    static partial void AddOnnxCommands(RootCommand root, TextWriter o, TextWriter e)
    {
        var model = new Argument<string>("model") { Description = "MODEL.onnx" };
        var inputs = new Option<string>("--inputs") { Description = "Folder with input_K.pb (serialized TensorProto), K in the graph's input order.", Required = true };
        var outDir = new Option<string>("--out") { Description = "Folder to write output_K.pb into (created if missing).", Required = true };
        var run = new Command("onnx-run", "Run an ONNX model on input_K.pb files and write output_K.pb files, as in ONNX backend-test folders.") { model, inputs, outDir };
        run.SetAction(pr => OnnxRun(pr.GetValue(model)!, pr.GetValue(inputs)!, pr.GetValue(outDir)!, o));
        root.Subcommands.Add(run);

        var dirs = new Argument<string[]>("dirs") { Description = "Backend-test folders (model.onnx + test_data_set_N/), or folders of them.", Arity = ArgumentArity.OneOrMore };
        var test = new Command("onnx-test", "Run ONNX backend-test folders and compare with their expected outputs (rtol 1e-3, atol 1e-7).") { dirs };
        test.SetAction(pr => OnnxTest(pr.GetValue(dirs)!, o));
        root.Subcommands.Add(test);

        var src = new Argument<string>("in") { Description = "A PyTorch state_dict (.safetensors) or an ONNX model (.onnx)." };
        var dst = new Argument<string>("out") { Description = "The other format: .onnx or .safetensors." };
        var cellOpt = new Option<string?>("--cell") { Description = "lstm, gru, rnn_tanh or rnn_relu: the cell of a state_dict whose metadata does not say (as PyTorch writes it)." };
        cellOpt.AcceptOnlyFromAmong("lstm", "gru", "rnn_tanh", "rnn_relu");
        var prefix = new Option<string>("--prefix") { Description = "Name prefix of the recurrent module's tensors in the state_dict (e.g. \"rnn.\").", DefaultValueFactory = _ => "" };
        var convert = new Command("convert", "Convert between a PyTorch state_dict (.safetensors) and an ONNX model (.onnx), both ways.") { src, dst, cellOpt, prefix };
        convert.SetAction(pr => Convert(pr.GetValue(src)!, pr.GetValue(dst)!, pr.GetValue(cellOpt), pr.GetValue(prefix)!, o));
        root.Subcommands.Add(convert);
    }

    private static int OnnxRun(string modelPath, string inputDir, string outDir, TextWriter o)
    {
        var model = OnnxModel.Load(modelPath);
        var tensors = new List<OnnxTensor>();
        for (int k = 0; k < model.Inputs.Count; k++)
        {
            string f = Path.Combine(inputDir, $"input_{k}.pb");
            if (!File.Exists(f)) throw new FileNotFoundException($"'{f}' is missing: the model has {model.Inputs.Count} inputs ({string.Join(", ", model.Inputs.Select(i => i.Name))}).", f);
            tensors.Add(OnnxTensor.Parse(File.ReadAllBytes(f), f));
        }
        var outputs = model.CreateSession().Run(tensors);
        Directory.CreateDirectory(outDir);
        for (int k = 0; k < outputs.Length; k++)
        {
            string f = Path.Combine(outDir, $"output_{k}.pb");
            File.WriteAllBytes(f, outputs[k].ToBytes());
            o.WriteLine($"{f}: {outputs[k].Name} {outputs[k].DataType.ToString().ToLowerInvariant()} {outputs[k].ShapeText}");
        }
        return 0;
    }

    /// <summary>The result of one output of one test data set.</summary>
    private readonly record struct OutputCheck(bool Pass, double MaxAbs, double WorstRatio, string Detail);

    private static int OnnxTest(string[] dirs, TextWriter o)
    {
        const double rtol = 1e-3, atol = 1e-7;
        var cases = new List<string>();
        foreach (var d in dirs)
        {
            if (File.Exists(Path.Combine(d, "model.onnx"))) cases.Add(d);
            else if (Directory.Exists(d))
                cases.AddRange(Directory.GetDirectories(d).Where(c => File.Exists(Path.Combine(c, "model.onnx"))).OrderBy(c => c, StringComparer.Ordinal));
            else throw new DirectoryNotFoundException($"'{d}' is not a folder.");
        }
        if (cases.Count == 0) throw new ArgumentException("no backend-test folder (with a model.onnx) found.", nameof(dirs));
        int passed = 0, failed = 0;
        double worstAbs = 0;
        string worstAt = "";
        foreach (var c in cases)
        {
            string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(c));
            OnnxModel model;
            try { model = OnnxModel.Load(Path.Combine(c, "model.onnx")); }
            catch (Exception e) when (e is NotSupportedException or InvalidDataException)
            {
                o.WriteLine($"FAIL {name}: {e.Message}");
                failed++;
                continue;
            }
            var session = model.CreateSession();
            foreach (var set in Directory.GetDirectories(c, "test_data_set_*").OrderBy(s => s, StringComparer.Ordinal))
            {
                string setName = Path.GetFileName(set);
                OnnxTensor[] outputs;
                try
                {
                    var inputs = Enumerable.Range(0, model.Inputs.Count).Select(k => OnnxTensor.Parse(File.ReadAllBytes(Path.Combine(set, $"input_{k}.pb")), $"input_{k}.pb")).ToList();
                    outputs = session.Run(inputs);
                }
                catch (Exception e) when (e is NotSupportedException or InvalidDataException or ArgumentException or IOException)
                {
                    o.WriteLine($"FAIL {name}/{setName}: {e.Message}");
                    failed++;
                    continue;
                }
                for (int k = 0; k < outputs.Length; k++)
                {
                    var expected = OnnxTensor.Parse(File.ReadAllBytes(Path.Combine(set, $"output_{k}.pb")), $"output_{k}.pb");
                    var r = Compare(outputs[k], expected, rtol, atol);
                    o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{(r.Pass ? "pass" : "FAIL")} {name}/{setName} output {k} '{model.Outputs[k].Name}' {outputs[k].ShapeText}: max abs error {r.MaxAbs:E2}, worst error / tolerance {r.WorstRatio:F3}{r.Detail}"));
                    if (r.Pass) passed++; else failed++;
                    if (r.MaxAbs > worstAbs) { worstAbs = r.MaxAbs; worstAt = $"{name}/{setName} output {k}"; }
                }
            }
        }
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{passed} outputs passed, {failed} failed in {cases.Count} models (rtol {rtol}, atol {atol}); worst absolute error {worstAbs:E2}{(worstAt.Length > 0 ? " at " + worstAt : "")}"));
        return failed == 0 ? 0 : 1;
    }

    private static OutputCheck Compare(OnnxTensor actual, OnnxTensor expected, double rtol, double atol)
    {
        if (!actual.Dims.SequenceEqual(expected.Dims))
            return new OutputCheck(false, double.PositiveInfinity, double.PositiveInfinity, $" (shape differs: expected {expected.ShapeText})");
        double[] a = Values(actual), e = Values(expected);
        double maxAbs = 0, worst = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double err = Math.Abs(a[i] - e[i]);
            if (double.IsNaN(a[i]) != double.IsNaN(e[i])) err = double.PositiveInfinity;
            else if (double.IsNaN(err)) err = 0; // both NaN, or equal infinities
            maxAbs = Math.Max(maxAbs, err);
            worst = Math.Max(worst, err / (atol + rtol * Math.Abs(e[i])));
        }
        return new OutputCheck(worst <= 1, maxAbs, worst, "");
    }

    private static double[] Values(OnnxTensor t) =>
        t.Floats?.Select(v => (double)v).ToArray() ?? t.Doubles ?? t.Integers!.Select(v => (double)v).ToArray();

    private static int Convert(string input, string output, string? cell, string prefix, TextWriter o)
    {
        bool fromOnnx = input.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);
        bool toOnnx = output.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);
        if (fromOnnx == toOnnx || !(fromOnnx ? output : input).EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"convert goes between .safetensors and .onnx; got '{input}' -> '{output}'.");
        RecurrentNetwork net;
        if (fromOnnx)
        {
            net = OnnxModel.Load(input).ToNetwork();
            StateDict.Save(net, output);
        }
        else
        {
            var file = SafeTensorsFile.Read(input);
            var options = file.Metadata.ContainsKey("cell") && cell is null ? StateDict.ReadOptions(file.Metadata)
                : InferOptions(file, cell ?? throw new ArgumentException($"'{input}' does not say which cell it holds (no 'cell' metadata): give --cell."), prefix);
            StateDict.CheckHolds(file, options, prefix);
            net = new RecurrentNetwork(options);
            StateDict.Load(net, file, prefix);
            OnnxExport.Save(net, output);
        }
        o.WriteLine($"{input} -> {output}: {net.Options.CellName}, {net.Options.NumLayers} layer(s), input {net.Options.InputSize}, hidden {net.Options.HiddenSize}"
            + (net.Options.Bidirectional ? ", bidirectional" : net.Options.Reverse ? ", reverse" : ""));
        return 0;
    }

    /// <summary>A PyTorch state_dict's options from its tensor names and shapes (PyTorch writes no metadata).</summary>
    internal static RecurrentOptions InferOptions(SafeTensorsFile file, string cell, string prefix)
    {
        var type = RecurrentOptions.ParseCell(cell);
        if (!file.TryGetTensor(prefix + "weight_ih_l0", out var wih) || wih.Shape.Count != 2)
            throw new InvalidDataException($"the file has no 2-D '{prefix}weight_ih_l0': not a {cell} state_dict (or give --prefix).");
        if (!file.TryGetTensor(prefix + "weight_hh_l0", out var whh) || whh.Shape.Count != 2)
            throw new InvalidDataException($"the file has no 2-D '{prefix}weight_hh_l0'.");
        int gates = new RecurrentOptions(type, 1, 1).GateCount;
        if (wih.Shape[0] % gates != 0 || wih.Shape[0] / gates > int.MaxValue || wih.Shape[1] > int.MaxValue)
            throw new InvalidDataException($"'{prefix}weight_ih_l0' has shape ({string.Join(", ", wih.Shape)}), whose rows are not {gates} x hidden_size.");
        int hidden = (int)(wih.Shape[0] / gates), layers = 0;
        while (file.TryGetTensor($"{prefix}weight_ih_l{layers}", out _)) layers++;
        bool bidi = file.TryGetTensor(prefix + "weight_ih_l0_reverse", out _), bias = file.TryGetTensor(prefix + "bias_ih_l0", out _);
        int proj = file.TryGetTensor(prefix + "weight_hr_l0", out var whr) && whr.Shape.Count == 2 ? (int)Math.Min(whr.Shape[0], int.MaxValue) : 0;
        var o = new RecurrentOptions(type, (int)wih.Shape[1], hidden, layers, bidi, bias, proj);
        try { o.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"the tensors describe no valid network: {e.Message}"); }
        return o;
    }
}
