using System.Diagnostics;
using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Layers;
using RnnSimd.Training;

namespace RnnSimd.Tests.Training;

/// <summary>
/// Issue 9, item 7 (the deterministic part): real checkpoints (char-LM LSTM and adding GRU) mutated with fixed seeds
/// (metadata values replaced by hostile strings, keys removed, tensor shapes changed, bytes flipped or truncated) and
/// sent through <see cref="Trainer.Resume"/>, one training step and `rnnsimd sample`. Only the documented outcomes are
/// allowed: success, <see cref="InvalidDataException"/>, <see cref="TrainingDivergedException"/> (a mutated learning
/// rate may blow up), or exit code 1 with one line from the CLI. Bounded to about 20 s.
/// </summary>
public class CheckpointFuzzTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] Hostile =
    [
        "", "-1", "0", "1", "2", "-5", "1000000", "2147483647", "2147483648", "-2147483648", "99999999999999999999", "1e9", "NaN",
        "Infinity", "-0", "0x10", "abc", "a,b,c", ",", ",,,", "1,2", "1,2,3,4", "zz,1,2,3", "0,0,0,0", "ffffffffffffffff,1,2,3",
        "1ffffffffffffffff,1,2,3", "97,97", "1114112", "55296", "true", "false", "lstm", "gru", "rnn_relu", "xyz", "adam", "sgd",
        "adding", "copy", "charlm", "rnnsimd-checkpoint-1", "ü", new string('9', 5000), "3.5", " 1", "1 ", "+1",
    ];

    [Fact]
    public void Mutated_checkpoints_give_only_documented_outcomes()
    {
        string textPath = Path.Combine(_dir, "text.txt");
        File.WriteAllText(textPath, string.Concat(Enumerable.Repeat("a fuzzy text for a small model; ", 30)));
        var corpus = CharCorpus.FromFile(textPath);
        var seeds = new List<(string Path, CharCorpus? Corpus)>();
        string lm = Path.Combine(_dir, "lm.safetensors"), adding = Path.Combine(_dir, "adding.safetensors");
        var t1 = new Trainer(new TrainingConfig(TaskKind.CharLm, CellType.Lstm, Hidden: 6, SeqLen: 5, Batch: 2, TotalSteps: 10), corpus);
        t1.Step();
        t1.SaveCheckpoint(lm);
        var t2 = new Trainer(new TrainingConfig(TaskKind.Adding, CellType.Gru, Hidden: 5, Layers: 2, SeqLen: 6, Batch: 2, TotalSteps: 10, Optimizer: "sgd", Momentum: 0.9f));
        t2.Step();
        t2.SaveCheckpoint(adding);
        seeds.Add((lm, corpus));
        seeds.Add((adding, null));

        var rng = new Random(20261130);
        var sw = Stopwatch.StartNew();
        int cases = 0, accepted = 0;
        string mutant = Path.Combine(_dir, "mutant.safetensors");
        while (sw.Elapsed < TimeSpan.FromSeconds(15) && cases < 3000)
        {
            var (seed, corp) = seeds[cases % seeds.Count];
            string what = Mutate(rng, seed, mutant);
            cases++;
            try
            {
                var trainer = Trainer.Resume(mutant, corp);
                try { trainer.Step(); } catch (TrainingDivergedException) { }
                accepted++;
            }
            catch (InvalidDataException) { }
            catch (Exception e)
            {
                Assert.Fail($"case {cases} ({what}): Resume threw {e.GetType().Name}: {e.Message}");
            }
            if (corp is not null && cases % 7 == 0)
            {
                var err = new StringWriter();
                int code = Commands.Run(["sample", "--checkpoint", mutant, "--length", "3"], TextWriter.Null, err);
                Assert.True(code is 0 or 1, $"case {cases} ({what}): sample exit {code}: {err}");
                Assert.DoesNotContain("\n", err.ToString().TrimEnd());
            }
        }
        Assert.True(cases >= 200, $"only {cases} cases ran");
        Assert.True(accepted > 0 && accepted < cases, $"{accepted} of {cases} mutants accepted: the mutations should both pass and fail");
    }

    /// <summary>Writes a mutant of <paramref name="seed"/> to <paramref name="path"/>; returns a description.</summary>
    private static string Mutate(Random rng, string seed, string path)
    {
        var file = SafeTensorsFile.Read(seed);
        int kind = rng.Next(4);
        if (kind == 3)
        {
            byte[] bytes = File.ReadAllBytes(seed);
            int edits = 1 + rng.Next(4);
            var sb = new List<string>();
            for (int i = 0; i < edits; i++)
            {
                int at = rng.Next(bytes.Length);
                bytes[at] = (byte)rng.Next(256);
                sb.Add($"byte {at}");
            }
            if (rng.Next(4) == 0) { int len = rng.Next(bytes.Length); Array.Resize(ref bytes, len); sb.Add($"truncated to {len}"); }
            File.WriteAllBytes(path, bytes);
            return string.Join(", ", sb);
        }
        var meta = file.Metadata.ToDictionary(p => p.Key, p => p.Value);
        var tensors = file.Tensors.Select(t => (t.Name, Shape: t.Shape.Select(d => (int)d).ToArray(), Data: file.ReadFloats(t.Name))).ToList();
        string description;
        if (kind == 0)
        {
            string key = meta.Keys.ElementAt(rng.Next(meta.Count));
            string value = Hostile[rng.Next(Hostile.Length)];
            meta[key] = value;
            description = $"metadata {key} = '{(value.Length > 20 ? value[..20] + "…" : value)}'";
        }
        else if (kind == 1)
        {
            string key = meta.Keys.ElementAt(rng.Next(meta.Count));
            meta.Remove(key);
            description = $"metadata {key} removed";
        }
        else
        {
            int i = rng.Next(tensors.Count);
            var (name, shape, data) = tensors[i];
            int n = 1 + rng.Next(Math.Max(1, data.Length * 2));
            tensors[i] = (name, [n], Enumerable.Range(0, n).Select(j => j < data.Length ? data[j] : 0.5f).ToArray());
            description = $"tensor {name} reshaped to [{n}]";
        }
        SafeTensorsWriter.Write(path, tensors.Select(t => (t.Name, t.Shape, (ReadOnlyMemory<float>)t.Data)), meta);
        return description;
    }
}
