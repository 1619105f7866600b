using RnnSimd.IO;
using RnnSimd.Layers;
using RnnSimd.Onnx;
using RnnSimd.Training;
using SharpFuzz;

// One input: a file's bytes. Everything that reads a model or checkpoint file gets them; the documented outcomes
// (success, InvalidDataException, and for sizes above the memory budget ArgumentOutOfRangeException before any
// allocation) are swallowed, anything else escapes and AFL++ records it as a crash. `--replay FILE...` runs inputs
// without AFL++ (to check a finding, or the corpus) and prints each outcome.
// Two targets: safetensors files (no argument) and ONNX models (`--onnx` first: `--onnx`, `--onnx --replay FILE...`).
if (args is ["--onnx", .. var onnxArgs])
{
    if (onnxArgs is ["--replay", .. var onnxFiles])
    {
        foreach (var f in onnxFiles)
        {
            try { CheckOnnx(File.ReadAllBytes(f)); Console.WriteLine($"{f}: ok"); }
            catch (Exception e) { Console.WriteLine($"{f}: {e.GetType().Name}: {e.Message}"); }
        }
        return;
    }
    Fuzzer.OutOfProcess.Run(stream =>
    {
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        CheckOnnx(ms.ToArray());
    });
    return;
}
string temp = Path.Combine(Path.GetTempPath(), $"rnnsimd-fuzz-{Environment.ProcessId}.safetensors");
if (args is ["--make-corpus", var dir])
{
    // Small real files as seeds: two checkpoints (char-LM LSTM, adding GRU with SGD momentum) and a state_dict.
    Directory.CreateDirectory(dir);
    var lm = new Trainer(new TrainingConfig(TaskKind.CharLm, CellType.Lstm, Hidden: 3, SeqLen: 3, Batch: 2, TotalSteps: 5),
        new CharCorpus("a fuzzy text for a small model; a fuzzy text for a small model; and more of it."));
    lm.Step();
    lm.SaveCheckpoint(Path.Combine(dir, "charlm-lstm.safetensors"));
    var add = new Trainer(new TrainingConfig(TaskKind.Adding, CellType.Gru, Hidden: 2, Layers: 2, SeqLen: 3, Batch: 2, TotalSteps: 5,
        Optimizer: "sgd", Momentum: 0.9f));
    add.Step();
    add.SaveCheckpoint(Path.Combine(dir, "adding-gru.safetensors"));
    StateDict.Save(new RecurrentNetwork(new RecurrentOptions(CellType.RnnTanh, 2, 3, 1, Bidirectional: true)), Path.Combine(dir, "state-dict-rnn.safetensors"));
    // Reduced precisions: an int8 LSTM with projection and peepholes, a bf16 GRU, and the char-LM above in int8 as
    // `rnnsimd quantize` writes it (training state dropped, "rnn." in int8, the head F32, metadata precision).
    var lstmp = new RecurrentOptions(CellType.Lstm, 3, 4, 2, ProjSize: 2, Peepholes: true);
    StateDict.Save(new RecurrentNetwork(lstmp, 2).ToInference(Precision.Int8), Path.Combine(dir, "state-dict-lstmp-int8.safetensors"));
    StateDict.Save(new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 2, 3), 3).ToInference(Precision.BFloat16), Path.Combine(dir, "state-dict-gru-bf16.safetensors"));
    var lmFile = SafeTensorsFile.Read(Path.Combine(dir, "charlm-lstm.safetensors"));
    var lmMeta = lmFile.Metadata.Where(kv => kv.Key is not ("format" or "rng" or "cursors" or "optimizer_step" or "kernels")).ToDictionary(kv => kv.Key, kv => kv.Value);
    lmMeta[StateDict.PrecisionKey] = "int8";
    SafeTensorsWriter.WriteTensors(Path.Combine(dir, "charlm-lstm-int8.safetensors"),
        StateDict.StoredTensors(lm.Network.ToInference(Precision.Int8), "rnn.").Concat(new[] { "head.weight", "head.bias" }.Select(n =>
            SafeTensor.F32(n, lmFile.GetTensor(n).Shape.Select(d => (int)d).ToArray(), lmFile.ReadFloats(n)))), lmMeta);
    return;
}
if (args is ["--replay", .. var files])
{
    foreach (var f in files)
    {
        try { Check(File.ReadAllBytes(f), temp); Console.WriteLine($"{f}: ok"); }
        catch (Exception e) { Console.WriteLine($"{f}: {e.GetType().Name}: {e.Message}"); }
    }
    return;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    Check(ms.ToArray(), temp);
});

static void Check(byte[] bytes, string temp)
{
    SafeTensorsFile file;
    try { file = SafeTensorsFile.Read(bytes); }
    catch (InvalidDataException) { return; }
    foreach (var t in file.Tensors)
    {
        if (t.ElementCount > 1 << 20) continue;       // reading is bounded by the file; skip big ones for speed
        try { file.ReadFloats(t.Name); } catch (NotSupportedException) when (!t.DType.IsReadableAsFloat()) { } // documented
    }
    Documented(() =>
    {
        var o = StateDict.ReadOptions(file.Metadata);
        StateDict.CheckHolds(file, o);
        StateDict.Load(new RecurrentNetwork(o), file);
    });
    // Any precision (reduced files: StateDict.Reduced.cs's checks), then one step of what loaded.
    Documented(() => StepOnce(StateDict.LoadNetwork(file, StateDict.ReadOptions(file.Metadata), "fuzz")));
    Documented(() =>
    {
        // A char-LM file (checkpoint or quantized): the network under "rnn." as `rnnsimd sample` builds it.
        var c = TrainingConfig.FromMetadata(file.Metadata);
        var o = new RecurrentOptions(c.Cell, CheckpointMetadata.Vocabulary("f", file.Metadata).Length, c.Hidden, c.Layers);
        try { o.Validate(); } catch (ArgumentException) { return; }
        StepOnce(StateDict.LoadNetwork(file, o, "fuzz", "rnn."));
    });
    Documented(() => TrainingConfig.FromMetadata(file.Metadata));
    Documented(() => CheckpointMetadata.RngState("f", file.Metadata));
    Documented(() => CheckpointMetadata.Vocabulary("f", file.Metadata));
    Documented(() => CheckpointMetadata.Cursors("f", file.Metadata, 2, 1000));
    Documented(() =>
    {
        File.WriteAllBytes(temp, bytes);
        var corpus = new CharCorpus("a fuzzy text for a small model; a fuzzy text for a small model; and more of it.");
        var trainer = Trainer.Resume(temp, file.Metadata.TryGetValue("task", out var task) && task == "charlm" ? corpus : null);
        try { trainer.Step(); } catch (TrainingDivergedException) { }
    });
}

// An ONNX model: load it from bytes (no directory, so external data is refused) and, when it loads, run it once on
// inputs of its declared shapes (an unknown dimension is 2; an input of unknown rank, or above 65,536 elements,
// skips the run: the harness's own allocation stays small). Floats are 0; integers are 1, so that a sequence_lens
// input is valid and the recurrent kernels run. Documented: InvalidDataException, NotSupportedException
// ("unsupported..."), and while running the memory budget's ArgumentOutOfRangeException and the session's input
// checks (ArgumentException for the shape, index, inputs, tensor or name).
static void CheckOnnx(byte[] bytes)
{
    OnnxModel model;
    try { model = OnnxModel.Load(bytes, "fuzz", null); }
    catch (InvalidDataException) { return; }
    catch (NotSupportedException e) when (e.Message.StartsWith("unsupported", StringComparison.Ordinal)) { return; }
    var inputs = new List<OnnxTensor>();
    foreach (var vi in model.Inputs)
    {
        if (vi.Shape is null) return;
        long[] dims = vi.Shape.Select(d => d.Value >= 0 ? d.Value : 2).ToArray();
        long n = 1;
        foreach (long d in dims) if ((n *= Math.Min(d, 1L << 17)) > 1 << 16) return;
        inputs.Add(vi.ElementType == OnnxDataType.Float
            ? OnnxTensor.FromFloats(vi.Name, new float[n], dims)
            : OnnxTensor.FromIntegers(vi.Name, OnnxDataType.Int64, Enumerable.Repeat(1L, (int)n).ToArray(), dims));
    }
    try { model.CreateSession().Run(inputs); }
    catch (InvalidDataException) { }
    catch (NotSupportedException e) when (e.Message.StartsWith("unsupported", StringComparison.Ordinal)) { }
    catch (ArgumentOutOfRangeException e) when (e.Message.Contains("MemoryBudget", StringComparison.Ordinal)) { }
    catch (ArgumentException e) when (e.ParamName is "shape" or "index" or "inputs" or "tensor" or "name") { }
}

static void StepOnce(RecurrentNetwork net)
{
    if (net.Options.Bidirectional || net.Options.Reverse) return;
    net.Step(net.CreateState(), new float[net.Options.InputSize], new float[net.Options.OutputHidden]);
}

static void Documented(Action a)
{
    try { a(); }
    catch (InvalidDataException) { }
    catch (ArgumentOutOfRangeException e) when (e.Message.Contains("MemoryBudget", StringComparison.Ordinal)) { }
}
