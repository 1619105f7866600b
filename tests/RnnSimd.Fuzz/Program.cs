using RnnSimd.IO;
using RnnSimd.Layers;
using RnnSimd.Training;
using SharpFuzz;

// One input: a file's bytes. Everything that reads a model or checkpoint file gets them; the documented outcomes
// (success, InvalidDataException, and for sizes above the memory budget ArgumentOutOfRangeException before any
// allocation) are swallowed, anything else escapes and AFL++ records it as a crash. `--replay FILE...` runs inputs
// without AFL++ (to check a finding, or the corpus) and prints each outcome.
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

static void Documented(Action a)
{
    try { a(); }
    catch (InvalidDataException) { }
    catch (ArgumentOutOfRangeException e) when (e.Message.Contains("MemoryBudget", StringComparison.Ordinal)) { }
}
