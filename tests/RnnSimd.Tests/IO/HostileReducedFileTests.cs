using System.Diagnostics;
using System.Runtime.InteropServices;
using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Layers;
using RnnSimd.Training;

namespace RnnSimd.Tests.IO;

/// <summary>
/// Reduced-precision files that a writer would never produce (issue 11, item 4): each wrong dtype, missing or extra
/// scale, bad shape, -128 code, non-finite or negative scale and precision metadata that disagrees with the tensors is
/// refused with an <see cref="InvalidDataException"/> naming the file, the tensor, its dtype and shape and the expected
/// ones, before the network is allocated; the same files through `rnnsimd sample` give one line and exit 1; and mutants
/// of real reduced files (fixed seeds) give only documented outcomes.
/// </summary>
[Trait("Category", "IO")]
public sealed class HostileReducedFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-hostile-reduced-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>LSTM, input 3, hidden 4 (16 gate rows): weight_ih_l0 (16, 3), weight_hh_l0 (16, 4), biases (16).</summary>
    private static readonly RecurrentOptions Lstm = new(CellType.Lstm, 3, 4);

    /// <summary>Every tensor of a file with its dtype and data, to edit and write again.</summary>
    internal static List<SafeTensor> ReadAll(SafeTensorsFile f) => f.Tensors.Select(t =>
    {
        int[] shape = t.Shape.Select(d => (int)d).ToArray();
        var bytes = f.GetBytes(t.Name).Span;
        return t.DType switch
        {
            SafeTensorsDType.I8 => SafeTensor.I8(t.Name, shape, MemoryMarshal.Cast<byte, sbyte>(bytes).ToArray()),
            SafeTensorsDType.BF16 => SafeTensor.BF16(t.Name, shape, MemoryMarshal.Cast<byte, ushort>(bytes).ToArray()), // little-endian host
            _ => SafeTensor.F32(t.Name, shape, f.ReadFloats(t.Name)),
        };
    }).ToList();

    private string Write(string name, Precision p, Action<List<SafeTensor>, Dictionary<string, string>> edit)
    {
        string seed = Path.Combine(_dir, $"seed-{p.Name()}.safetensors");
        StateDict.Save(new RecurrentNetwork(Lstm, 5).ToInference(p), seed);
        var f = SafeTensorsFile.Read(seed);
        var tensors = ReadAll(f);
        var meta = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        edit(tensors, meta);
        string path = Path.Combine(_dir, $"{name}.safetensors");
        SafeTensorsWriter.WriteTensors(path, tensors, meta);
        return path;
    }

    private static void Replace(List<SafeTensor> ts, string name, Func<SafeTensor, SafeTensor> change)
    {
        int i = ts.FindIndex(t => t.Name == name);
        Assert.True(i >= 0, name);
        ts[i] = change(ts[i]);
    }

    private static float[] Floats(int n, float v = 0.01f) => Enumerable.Repeat(v, n).ToArray();

    /// <summary>Each case: the file's precision, its edit, what the message must name.</summary>
    public static TheoryData<string> Cases() => new(CaseTable.Keys);

    private static readonly Dictionary<string, (Precision P, Action<List<SafeTensor>, Dictionary<string, string>> Edit, string[] Mentions)> CaseTable = new()
    {
        ["int8 weight stored as F32"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_ih_l0", t => SafeTensor.F32(t.Name, t.Shape, Floats(48))),
            ["'weight_ih_l0' is F32 [16, 3], expected I8 [16, 3]"]),
        ["a BF16 matrix in an int8 file"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_hh_l0", t => SafeTensor.BF16(t.Name, t.Shape, new ushort[64])),
            ["'weight_hh_l0' is BF16 [16, 4], expected I8 [16, 4]", "metadata 'precision' = int8"]),
        ["an I8 matrix in a bf16 file"] = (Precision.BFloat16, (ts, _) => Replace(ts, "weight_ih_l0", t => SafeTensor.I8(t.Name, t.Shape, new sbyte[48])),
            ["'weight_ih_l0' is I8 [16, 3], expected BF16 [16, 3]", "metadata 'precision' = bf16"]),
        ["a missing scale"] = (Precision.Int8, (ts, _) => ts.RemoveAll(t => t.Name == "weight_hh_l0_scale"),
            ["missing 'weight_hh_l0_scale' (F32 [16]: the per-row scales of 'weight_hh_l0')"]),
        ["a scale in a bf16 file"] = (Precision.BFloat16, (ts, _) => ts.Add(SafeTensor.F32("weight_ih_l0_scale", [16], Floats(16))),
            ["unexpected 'weight_ih_l0_scale' (F32 [16]): a bf16 file has no scales"]),
        ["a scale of no matrix"] = (Precision.Int8, (ts, _) => ts.Add(SafeTensor.F32("weight_ih_l1_scale", [16], Floats(16))),
            ["unexpected 'weight_ih_l1_scale' (F32 [16]): no int8 matrix of this network has that name"]),
        ["a scale of shape (rows, 1)"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_ih_l0_scale", t => SafeTensor.F32(t.Name, [16, 1], t.F32Data)),
            ["'weight_ih_l0_scale' is F32 [16, 1], expected F32 [16]: the per-row scales of 'weight_ih_l0'"]),
        ["a scale one row short"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_ih_l0_scale", t => SafeTensor.F32(t.Name, [15], t.F32Data[..15])),
            ["'weight_ih_l0_scale' is F32 [15], expected F32 [16]"]),
        ["a scale in BF16"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_hh_l0_scale", t => SafeTensor.BF16(t.Name, t.Shape, new ushort[16])),
            ["'weight_hh_l0_scale' is BF16 [16], expected F32 [16]"]),
        ["a code of -128"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_hh_l0", t =>
            {
                var codes = t.I8Data.ToArray();
                codes[2 * 4 + 3] = sbyte.MinValue;
                return SafeTensor.I8(t.Name, t.Shape, codes);
            }),
            ["'weight_hh_l0' [2, 3] = -128", "[-127, 127]"]),
        ["a NaN scale"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_ih_l0_scale", t => SafeTensor.F32(t.Name, t.Shape, WithValue(t.F32Data, 5, float.NaN))),
            ["'weight_ih_l0_scale' [5] = NaN", "finite and non-negative"]),
        ["a negative scale"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_ih_l0_scale", t => SafeTensor.F32(t.Name, t.Shape, WithValue(t.F32Data, 15, -0.5f))),
            ["'weight_ih_l0_scale' [15] = -0.5"]),
        ["an infinite scale"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_hh_l0_scale", t => SafeTensor.F32(t.Name, t.Shape, WithValue(t.F32Data, 0, float.PositiveInfinity))),
            ["'weight_hh_l0_scale' [0] = Infinity"]),
        ["an unknown precision"] = (Precision.Int8, (_, m) => m["precision"] = "fp8",
            ["metadata 'precision' = 'fp8' is not float32, bf16 or int8"]),
        ["a precision in capitals"] = (Precision.Int8, (_, m) => m["precision"] = "INT8",
            ["metadata 'precision' = 'INT8'"]),
        ["int8 tensors, precision bf16"] = (Precision.Int8, (_, m) => m["precision"] = "bf16",
            ["'weight_ih_l0' is I8 [16, 3], expected BF16 [16, 3]", "unexpected 'weight_ih_l0_scale'", "metadata 'precision' = bf16"]),
        ["bf16 tensors, precision int8"] = (Precision.BFloat16, (_, m) => m["precision"] = "int8",
            ["'weight_ih_l0' is BF16 [16, 3], expected I8 [16, 3]", "missing 'weight_ih_l0_scale'"]),
        ["int8 tensors, no precision"] = (Precision.Int8, (_, m) => m.Remove("precision"),
            ["'weight_ih_l0' is I8, but the metadata's 'precision' is absent", "'precision' = int8"]),
        ["int8 tensors, precision float32"] = (Precision.Int8, (_, m) => m["precision"] = "float32",
            ["'weight_ih_l0' is I8, but the metadata's 'precision' is float32"]),
        ["a BF16 bias"] = (Precision.BFloat16, (ts, _) => Replace(ts, "bias_ih_l0", t => SafeTensor.BF16(t.Name, t.Shape, new ushort[16])),
            ["'bias_ih_l0' is BF16 [16], expected F32 [16]"]),
        ["a transposed matrix"] = (Precision.Int8, (ts, _) => Replace(ts, "weight_ih_l0", t => SafeTensor.I8(t.Name, [3, 16], t.I8Data)),
            ["'weight_ih_l0' is I8 [3, 16], expected I8 [16, 3]"]),
        ["a missing matrix"] = (Precision.BFloat16, (ts, _) => ts.RemoveAll(t => t.Name == "weight_hh_l0"),
            ["missing 'weight_hh_l0' (BF16 [16, 4])"]),
        ["peepholes in the metadata only"] = (Precision.Int8, (_, m) => m["peepholes"] = "true",
            ["missing 'weight_peep_l0' (F32 [3, 4])"]),
        ["a million layers in the metadata"] = (Precision.Int8, (_, m) => m["num_layers"] = "1000000",
            ["1000000 layer(s)", "the network needs more tensors than the file's 6"]),
        ["a hidden size of 10^8 in the metadata"] = (Precision.BFloat16, (_, m) => m["hidden_size"] = "100000000",
            ["'weight_ih_l0' is BF16 [16, 3], expected BF16 [400000000, 3]"]),
    };

    private static float[] WithValue(ReadOnlyMemory<float> data, int index, float value)
    {
        var a = data.ToArray();
        a[index] = value;
        return a;
    }

    [Theory, MemberData(nameof(Cases))]
    public void A_hostile_reduced_file_is_refused_naming_file_tensor_dtype_and_expected_shape_before_allocating(string name)
    {
        var (p, edit, mentions) = CaseTable[name];
        string path = Write(name.Replace(' ', '-').Replace(',', '-'), p, edit);
        SafeTensorsFile.Read(path); // a valid safetensors file: only the reduced-precision rules refuse it

        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => StateDict.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.StartsWith(path, e.Message);
        foreach (var m in mentions) Assert.Contains(m, e.Message);
        Assert.True(allocated < 1 << 20, $"{allocated} bytes allocated before refusing a {new FileInfo(path).Length}-byte file");
    }

    /// <summary>A char-LM file with a hostile network: `rnnsimd sample` refuses it in one line naming the file and the tensor (exit 1).</summary>
    [Theory]
    [InlineData("rnn.weight_hh_l0_scale", "missing 'rnn.weight_hh_l0_scale'")]
    [InlineData("rnn.weight_ih_l0", "'rnn.weight_ih_l0' [0, 0] = -128")]
    [InlineData("rnn.weight_hh_l0_scale[1]", "'rnn.weight_hh_l0_scale' [1] = NaN")]
    [InlineData("precision", "metadata 'precision' = 'int4'")]
    [InlineData("head.weight", "'head.weight' is I8 [")]
    public void Sample_refuses_a_hostile_reduced_charlm_file_in_one_line(string target, string mention)
    {
        string text = Path.Combine(_dir, "text.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("a small text to learn from, a small text. ", 20)));
        string ckpt = Path.Combine(_dir, "lm.safetensors"), q = Path.Combine(_dir, "lm-int8.safetensors");
        var trainer = new Trainer(new TrainingConfig(TaskKind.CharLm, CellType.Gru, Hidden: 6, SeqLen: 5, Batch: 2, TotalSteps: 2), CharCorpus.FromFile(text));
        trainer.Step();
        trainer.SaveCheckpoint(ckpt);
        Assert.Equal(0, Commands.Run(["quantize", ckpt, q, "--precision", "int8"], TextWriter.Null, TextWriter.Null));

        var f = SafeTensorsFile.Read(q);
        var tensors = ReadAll(f);
        var meta = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        switch (target)
        {
            case "rnn.weight_hh_l0_scale": tensors.RemoveAll(t => t.Name == target); break;
            case "rnn.weight_ih_l0": Replace(tensors, target, t => SafeTensor.I8(t.Name, t.Shape, WithCode(t.I8Data))); break;
            case "rnn.weight_hh_l0_scale[1]": Replace(tensors, "rnn.weight_hh_l0_scale", t => SafeTensor.F32(t.Name, t.Shape, WithValue(t.F32Data, 1, float.NaN))); break;
            case "precision": meta["precision"] = "int4"; break;
            case "head.weight": Replace(tensors, target, t => SafeTensor.I8(t.Name, t.Shape, new sbyte[t.Length])); break;
        }
        string bad = Path.Combine(_dir, "bad.safetensors");
        SafeTensorsWriter.WriteTensors(bad, tensors, meta);
        var err = new StringWriter();
        Assert.Equal(1, Commands.Run(["sample", "--checkpoint", bad, "--length", "5"], TextWriter.Null, err));
        string line = err.ToString().TrimEnd();
        Assert.StartsWith("rnnsimd: ", line);
        Assert.DoesNotContain("\n", line);
        Assert.Contains(bad, line);
        Assert.Contains(mention, line);

        static sbyte[] WithCode(ReadOnlyMemory<sbyte> codes)
        {
            var a = codes.ToArray();
            a[0] = sbyte.MinValue;
            return a;
        }
    }

    private static readonly string[] HostileValues =
        ["", "0", "1", "2", "-1", "1000000", "2147483647", "NaN", "int8", "bf16", "float32", "INT8", "fp16", "true", "false", "lstm", "gru", "rnn_relu", "ü"];

    /// <summary>
    /// Real reduced files (int8 and bf16 state_dicts of a 2-layer LSTM with projection and peepholes, an int8 GRU; an int8
    /// char-LM file) mutated with fixed seeds: bytes flipped or truncated, metadata values replaced or removed, a tensor's
    /// dtype changed (data converted or resized), reshaped, dropped or duplicated under another name. Only the documented
    /// outcomes are allowed: a network (which then steps), <see cref="InvalidDataException"/>, or the memory budget's
    /// <see cref="ArgumentOutOfRangeException"/>; `rnnsimd sample` exits 0 or 1 with one line. Bounded to about 8 s.
    /// </summary>
    [Fact]
    public void Mutated_reduced_files_give_only_documented_outcomes()
    {
        var seeds = new List<string>();
        void Seed(RecurrentOptions o, Precision p)
        {
            string path = Path.Combine(_dir, $"seed-{seeds.Count}.safetensors");
            StateDict.Save(new RecurrentNetwork(o, (ulong)seeds.Count + 1).ToInference(p), path);
            seeds.Add(path);
        }
        var lstm = new RecurrentOptions(CellType.Lstm, 3, 5, 2, ProjSize: 2, Peepholes: true);
        Seed(lstm, Precision.Int8);
        Seed(lstm, Precision.BFloat16);
        Seed(new RecurrentOptions(CellType.Gru, 4, 3, Bidirectional: true), Precision.Int8);
        string text = Path.Combine(_dir, "text.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("mutants of a small model; ", 30)));
        string ckpt = Path.Combine(_dir, "lm.safetensors"), lm = Path.Combine(_dir, "lm-int8.safetensors");
        new Trainer(new TrainingConfig(TaskKind.CharLm, CellType.Lstm, Hidden: 4, SeqLen: 4, Batch: 2, TotalSteps: 2), CharCorpus.FromFile(text)).SaveCheckpoint(ckpt);
        Assert.Equal(0, Commands.Run(["quantize", ckpt, lm, "--precision", "int8"], TextWriter.Null, TextWriter.Null));
        seeds.Add(lm);

        var rng = new Random(20261201);
        var sw = Stopwatch.StartNew();
        int cases = 0, loaded = 0;
        string mutant = Path.Combine(_dir, "mutant.safetensors");
        while (sw.Elapsed < TimeSpan.FromSeconds(8) && cases < 4000)
        {
            string seed = seeds[cases % seeds.Count];
            bool charLm = seed == lm;
            string what = Mutate(rng, seed, mutant);
            cases++;
            if (charLm)
            {
                var err = new StringWriter();
                int code = Commands.Run(["sample", "--checkpoint", mutant, "--length", "3"], TextWriter.Null, err);
                Assert.True(code is 0 or 1, $"case {cases} ({what}): sample exit {code}: {err}");
                Assert.DoesNotContain("\n", err.ToString().TrimEnd());
                if (code == 0) loaded++;
                continue;
            }
            try
            {
                var net = StateDict.Read(mutant);
                if (!net.Options.Bidirectional && !net.Options.Reverse)
                    net.Step(net.CreateState(), new float[net.Options.InputSize], new float[net.Options.OutputHidden]);
                loaded++;
            }
            catch (InvalidDataException) { }
            catch (ArgumentOutOfRangeException e) when (e.Message.Contains("MemoryBudget", StringComparison.Ordinal)) { }
            catch (Exception e)
            {
                Assert.Fail($"case {cases} ({what}): {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.True(cases >= 200, $"only {cases} cases ran");
        Assert.True(loaded > 0 && loaded < cases, $"{loaded} of {cases} mutants loaded: the mutations should both pass and fail");
    }

    private static string Mutate(Random rng, string seed, string path)
    {
        var file = SafeTensorsFile.Read(seed);
        int kind = rng.Next(6);
        if (kind == 0)
        {
            byte[] bytes = File.ReadAllBytes(seed);
            var what = new List<string>();
            for (int i = 0, n = 1 + rng.Next(4); i < n; i++)
            {
                int at = rng.Next(bytes.Length);
                bytes[at] = (byte)rng.Next(256);
                what.Add($"byte {at}");
            }
            if (rng.Next(4) == 0) { int len = rng.Next(bytes.Length); Array.Resize(ref bytes, len); what.Add($"truncated to {len}"); }
            File.WriteAllBytes(path, bytes);
            return string.Join(", ", what);
        }
        var meta = file.Metadata.ToDictionary(p => p.Key, p => p.Value);
        var tensors = ReadAll(file);
        string description;
        int i0 = rng.Next(tensors.Count);
        var t0 = tensors[i0];
        switch (kind)
        {
            case 1:
            {
                string key = meta.Keys.ElementAt(rng.Next(meta.Count));
                if (rng.Next(3) == 0) { meta.Remove(key); description = $"metadata {key} removed"; }
                else { meta[key] = HostileValues[rng.Next(HostileValues.Length)]; description = $"metadata {key} = '{meta[key]}'"; }
                break;
            }
            case 2:
            {
                // Another dtype, the same element count (data converted: codes and bit patterns as they come).
                int n = t0.Length;
                var values = t0.DType == SafeTensorsDType.F32 ? t0.F32Data.ToArray()
                    : t0.DType == SafeTensorsDType.I8 ? t0.I8Data.ToArray().Select(c => (float)c).ToArray()
                    : t0.BF16Data.ToArray().Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray();
                tensors[i0] = rng.Next(3) switch
                {
                    0 => SafeTensor.F32(t0.Name, t0.Shape, values),
                    1 => SafeTensor.BF16(t0.Name, t0.Shape, values.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray()),
                    _ => SafeTensor.I8(t0.Name, t0.Shape, values.Select(v => (sbyte)Math.Clamp(MathF.Round(v), -128, 127)).ToArray()),
                };
                description = $"{t0.Name} {t0.DType.ToFormatString()} -> {tensors[i0].DType.ToFormatString()} ({n})";
                break;
            }
            case 3:
            {
                int n = 1 + rng.Next(Math.Max(1, t0.Length * 2));
                int[] shape = rng.Next(2) == 0 ? [n] : [1, n];
                tensors[i0] = t0.DType switch
                {
                    SafeTensorsDType.I8 => SafeTensor.I8(t0.Name, shape, Enumerable.Range(0, n).Select(j => j < t0.Length ? t0.I8Data.Span[j] : (sbyte)-128).ToArray()),
                    SafeTensorsDType.BF16 => SafeTensor.BF16(t0.Name, shape, Enumerable.Range(0, n).Select(j => j < t0.Length ? t0.BF16Data.Span[j] : (ushort)0x7FC0).ToArray()),
                    _ => SafeTensor.F32(t0.Name, shape, Enumerable.Range(0, n).Select(j => j < t0.Length ? t0.F32Data.Span[j] : -1f).ToArray()),
                };
                description = $"{t0.Name} reshaped to [{string.Join(", ", shape)}]";
                break;
            }
            case 4:
                tensors.RemoveAt(i0);
                description = $"{t0.Name} removed";
                break;
            default:
            {
                string name = rng.Next(2) == 0 ? t0.Name + StateDict.ScaleSuffix : t0.Name.Replace("_l0", "_l1", StringComparison.Ordinal) + "x";
                if (tensors.Any(t => t.Name == name)) name += "_";
                tensors.Add(t0.DType switch
                {
                    SafeTensorsDType.I8 => SafeTensor.I8(name, t0.Shape, t0.I8Data),
                    SafeTensorsDType.BF16 => SafeTensor.BF16(name, t0.Shape, t0.BF16Data),
                    _ => SafeTensor.F32(name, t0.Shape, t0.F32Data),
                });
                description = $"{name} added";
                break;
            }
        }
        SafeTensorsWriter.WriteTensors(path, tensors, meta);
        return description;
    }
}
