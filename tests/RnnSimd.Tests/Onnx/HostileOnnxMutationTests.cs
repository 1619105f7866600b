using System.Diagnostics;
using RnnSimd.Onnx;
using Xunit.Abstractions;

namespace RnnSimd.Tests.Onnx;

/// <summary>
/// The deterministic part of fuzzing the ONNX importer: every model.onnx under tests/data/onnx (node and spec) mutated
/// with fixed seeds (bit flips, byte overwrites, inserts, deletes, varint extremes written over or into the bytes,
/// splices from another model, truncation), loaded, and when it loads run on its test_data_set_0 inputs; and every
/// input_K.pb mutated the same way, parsed, and when it parses fed to its (unmutated) model. Only the documented
/// outcomes may escape: see <see cref="Documented"/>. The coverage-guided part is tests/RnnSimd.Fuzz (--onnx).
/// </summary>
[Trait("Category", "Onnx")]
public class HostileOnnxMutationTests(ITestOutputHelper output)
{
    private sealed record Seed(string Name, byte[] Model, byte[][] InputFiles)
    {
        public List<OnnxTensor> Inputs() => InputFiles.Select((b, k) => OnnxTensor.Parse(b, $"input_{k}.pb")).ToList();
    }

    private static readonly Lazy<List<Seed>> Seeds = new(() =>
    {
        var seeds = new List<Seed>();
        foreach (var kind in new[] { "node", "spec" })
            foreach (var dir in Directory.GetDirectories(Path.Combine(OnnxBackendTests.OnnxDir, kind)).OrderBy(x => x, StringComparer.Ordinal))
            {
                string set = Path.Combine(dir, "test_data_set_0");
                var inputs = new List<byte[]>();
                for (int k = 0; File.Exists(Path.Combine(set, $"input_{k}.pb")); k++) inputs.Add(File.ReadAllBytes(Path.Combine(set, $"input_{k}.pb")));
                seeds.Add(new Seed(kind + "/" + Path.GetFileName(dir), File.ReadAllBytes(Path.Combine(dir, "model.onnx")), [.. inputs]));
            }
        return seeds;
    });

    /// <summary>
    /// The documented outcomes. Loading: <see cref="InvalidDataException"/>, or <see cref="NotSupportedException"/>
    /// starting "unsupported". Running adds the memory budget's <see cref="ArgumentOutOfRangeException"/> and the
    /// <see cref="ArgumentException"/>s of <see cref="OnnxSession"/>'s input checks (inputs that do not fit the model).
    /// </summary>
    private static bool Documented(Exception e, bool running) => e switch
    {
        InvalidDataException => e.Message.Length > 0,
        NotSupportedException => e.Message.StartsWith("unsupported", StringComparison.Ordinal),
        ArgumentOutOfRangeException when running => e.Message.Contains("MemoryBudget", StringComparison.Ordinal),
        ArgumentException a when running => a.ParamName is "shape" or "index" or "inputs" or "tensor" or "name",
        _ => false,
    };

    private static readonly byte[][] Extremes =
    [
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],   // -1 as int64, 2^64-1
        [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],   // 2^63 = long.MinValue
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],         // long.MaxValue
        [0xFF, 0xFF, 0xFF, 0xFF, 0x07],                                 // int.MaxValue
        [0x80, 0x80, 0x80, 0x80, 0x08],                                 // 2^31
        [0xFF, 0xFF, 0xFF, 0xFF, 0x0F],                                 // uint.MaxValue
        [0xC7, 0xFF, 0xFF, 0xFF, 0x07],                                 // Array.MaxLength
        [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // 11 bytes
        [0x00], [0x01], [0x7F], [0x80], [0x80, 0x01], [0xFF, 0x7F],
    ];

    /// <summary>A mutant of <paramref name="bytes"/> (splices take bytes from <paramref name="other"/>), and what was done.</summary>
    internal static (byte[] Bytes, string What) Mutate(Random rng, byte[] bytes, byte[] other)
    {
        var b = new List<byte>(bytes);
        var what = new List<string>();
        int edits = 1 + (rng.Next(3) == 0 ? rng.Next(4) : 0);
        for (int e = 0; e < edits; e++)
        {
            int at = rng.Next(b.Count + 1);
            switch (rng.Next(8))
            {
                case 0 when at < b.Count:
                    int bit = rng.Next(8);
                    b[at] ^= (byte)(1 << bit);
                    what.Add($"flip {at}.{bit}");
                    break;
                case 1 when at < b.Count:
                    b[at] = (byte)rng.Next(256);
                    what.Add($"byte {at} = {b[at]}");
                    break;
                case 2:
                {
                    int n = 1 + rng.Next(8);
                    for (int i = 0; i < n; i++) b.Insert(at, (byte)rng.Next(256));
                    what.Add($"insert {n} at {at}");
                    break;
                }
                case 3 when at < b.Count:
                {
                    int n = Math.Min(1 + rng.Next(16), b.Count - at);
                    b.RemoveRange(at, n);
                    what.Add($"delete {n} at {at}");
                    break;
                }
                case 4 or 5:
                {
                    var v = Extremes[rng.Next(Extremes.Length)];
                    if (rng.Next(2) == 0)
                    {
                        for (int i = 0; i < v.Length; i++) if (at + i < b.Count) b[at + i] = v[i]; else b.Add(v[i]);
                        what.Add($"varint {Convert.ToHexString(v)} over {at}");
                    }
                    else
                    {
                        b.InsertRange(at, v);
                        what.Add($"varint {Convert.ToHexString(v)} into {at}");
                    }
                    break;
                }
                case 6:
                {
                    int from = rng.Next(other.Length), n = Math.Min(1 + rng.Next(64), other.Length - from);
                    int drop = Math.Min(rng.Next(64), b.Count - at);
                    b.RemoveRange(at, drop);
                    b.InsertRange(at, other.AsSpan(from, n).ToArray());
                    what.Add($"splice {n} from {from} over {drop} at {at}");
                    break;
                }
                default:
                    if (b.Count > 0)
                    {
                        int n = rng.Next(b.Count);
                        b.RemoveRange(n, b.Count - n);
                        what.Add($"truncate to {n}");
                    }
                    break;
            }
        }
        return ([.. b], what.Count > 0 ? string.Join(", ", what) : "unchanged");
    }

    /// <summary>
    /// A protobuf message read without its schema, for mutations that keep the wire format valid (lengths are written
    /// again), so they reach the checks behind the reader: a length-delimited value is also read as a nested message
    /// when all of it parses as one.
    /// </summary>
    internal sealed class PbField
    {
        public int Field, Wire;
        public ulong Value;               // varint, fixed32 or fixed64
        public byte[] Bytes = [];         // length-delimited
        public List<PbField>? Children;   // Bytes read as a message, when they parse as one

        public PbField Clone() => new() { Field = Field, Wire = Wire, Value = Value, Bytes = Bytes, Children = Children?.Select(c => c.Clone()).ToList() };

        public static List<PbField>? Parse(ReadOnlySpan<byte> b, int depth)
        {
            var list = new List<PbField>();
            int pos = 0;
            while (pos < b.Length)
            {
                if (!Varint(b, ref pos, out ulong tag) || tag >> 3 is 0 or > 536_870_911) return null;
                var f = new PbField { Field = (int)(tag >> 3), Wire = (int)(tag & 7) };
                switch (f.Wire)
                {
                    case 0: if (!Varint(b, ref pos, out f.Value)) return null; break;
                    case 1: if (b.Length - pos < 8) return null; f.Value = BitConverter.ToUInt64(b.Slice(pos, 8)); pos += 8; break;
                    case 5: if (b.Length - pos < 4) return null; f.Value = BitConverter.ToUInt32(b.Slice(pos, 4)); pos += 4; break;
                    case 2:
                        if (!Varint(b, ref pos, out ulong n) || n > (ulong)(b.Length - pos)) return null;
                        f.Bytes = b.Slice(pos, (int)n).ToArray();
                        pos += (int)n;
                        if (depth < 8 && n > 0) f.Children = Parse(f.Bytes, depth + 1);
                        break;
                    default: return null;
                }
                list.Add(f);
            }
            return list;
        }

        private static bool Varint(ReadOnlySpan<byte> b, ref int pos, out ulong v)
        {
            v = 0;
            for (int shift = 0; shift < 64 && pos < b.Length; shift += 7)
            {
                byte x = b[pos++];
                v |= (ulong)(x & 0x7F) << shift;
                if (x < 0x80) return true;
            }
            return false;
        }
    }

    private static readonly ulong[] VarintExtremes =
        [0, 1, 2, 3, 4, 7, 13, 23, ulong.MaxValue, long.MaxValue, 1UL << 63, int.MaxValue, 1UL << 31, (ulong)Array.MaxLength, 1 << 20, 1UL << 40, uint.MaxValue];

    private static readonly string[] Words =
    [
        "", "LSTM", "GRU", "RNN", "Identity", "Constant", "Cast", "Shape", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Slice",
        "Concat", "Gather", "Add", "MatMul", "Gemm", "Loop", "forward", "reverse", "bidirectional", "sideways", "tanh", "Relu",
        "Sigmoid", "hidden_size", "layout", "direction", "activations", "clip", "axes", "perm", "axis", "to", "value", "location",
        "../x", "w.bin", "ai.onnx", "com.microsoft",
    ];

    /// <summary>A mutant that keeps the protobuf framing valid: one field changed, removed, doubled, moved or renumbered.</summary>
    internal static (byte[] Bytes, string What) MutateStructure(Random rng, byte[] bytes, byte[] other)
    {
        var root = PbField.Parse(bytes, 0);
        if (root is null) return Mutate(rng, bytes, other);
        var all = new List<(List<PbField> Parent, PbField Field)>();
        void Walk(List<PbField> list) { foreach (var f in list) { all.Add((list, f)); if (f.Children is not null) Walk(f.Children); } }
        Walk(root);
        var strings = all.Where(p => p.Field.Wire == 2 && p.Field.Children is null && p.Field.Bytes.Length <= 32)
            .Select(p => System.Text.Encoding.UTF8.GetString(p.Field.Bytes)).Concat(Words).Distinct().ToArray();
        var what = new List<string>();
        int edits = 1 + (rng.Next(3) == 0 ? rng.Next(3) : 0);
        for (int e = 0; e < edits && all.Count > 0; e++)
        {
            var (parent, f) = all[rng.Next(all.Count)];
            switch (rng.Next(7))
            {
                case 0 or 1 when f.Wire == 0:
                {
                    ulong v = rng.Next(3) == 0 ? f.Value + (ulong)(rng.Next(3) - 1) : VarintExtremes[rng.Next(VarintExtremes.Length)];
                    what.Add($"field {f.Field} = {(long)v} (was {(long)f.Value})");
                    f.Value = v;
                    break;
                }
                case 0 or 1 when f.Wire == 5:
                {
                    float v = new[] { float.NaN, float.PositiveInfinity, -0f, 1e30f, -1, 0.5f }[rng.Next(6)];
                    f.Value = BitConverter.SingleToUInt32Bits(v);
                    what.Add($"field {f.Field} = {v}");
                    break;
                }
                case 0 or 1 when f.Wire == 2:
                {
                    string v = strings[rng.Next(strings.Length)];
                    what.Add($"field {f.Field} = '{v}'");
                    f.Bytes = System.Text.Encoding.UTF8.GetBytes(v);
                    f.Children = null;
                    break;
                }
                case 2:
                    parent.Remove(f);
                    what.Add($"field {f.Field} removed");
                    break;
                case 3:
                    parent.Insert(parent.IndexOf(f) + 1, f.Clone());
                    what.Add($"field {f.Field} doubled");
                    break;
                case 4:
                {
                    var (to, g) = all[rng.Next(all.Count)];
                    if (to.Contains(f) || f.Children?.Contains(g) == true) break;
                    to.Insert(rng.Next(to.Count + 1), f.Clone());
                    what.Add($"field {f.Field} copied beside field {g.Field}");
                    break;
                }
                case 5:
                {
                    int n = 1 + rng.Next(21);
                    what.Add($"field {f.Field} renumbered {n}");
                    f.Field = n;
                    break;
                }
                default:
                {
                    int i = parent.IndexOf(f), j = rng.Next(parent.Count);
                    (parent[i], parent[j]) = (parent[j], parent[i]);
                    what.Add($"fields {i} and {j} swapped");
                    break;
                }
            }
            all.Clear();
            Walk(root);
        }
        return (Serialize(root), what.Count > 0 ? string.Join(", ", what) : "unchanged");
    }

    private static byte[] Serialize(List<PbField> fields)
    {
        var b = new List<byte>();
        void V(ulong v) { while (v >= 0x80) { b.Add((byte)(v | 0x80)); v >>= 7; } b.Add((byte)v); }
        foreach (var f in fields)
        {
            V(((ulong)f.Field << 3) | (uint)f.Wire);
            switch (f.Wire)
            {
                case 0: V(f.Value); break;
                case 1: b.AddRange(BitConverter.GetBytes(f.Value)); break;
                case 5: b.AddRange(BitConverter.GetBytes((uint)f.Value)); break;
                default:
                    var bytes = f.Children is null ? f.Bytes : Serialize(f.Children);
                    V((ulong)bytes.Length);
                    b.AddRange(bytes);
                    break;
            }
        }
        return [.. b];
    }

    [Fact]
    public void Structure_parser_writes_every_seed_back_byte_for_byte()
    {
        foreach (var seed in Seeds.Value)
            Assert.Equal(seed.Model, Serialize(PbField.Parse(seed.Model, 0)!));
    }

    [Theory]
    [InlineData(false, 20261130, 6000)]
    [InlineData(true, 1130, 6000)]
    public void Mutated_models_load_and_run_or_fail_as_documented(bool structural, int rngSeed, int count)
    {
        var seeds = Seeds.Value;
        Assert.True(seeds.Count >= 70, $"{seeds.Count} seed models");
        var rng = new Random(rngSeed);
        var sw = Stopwatch.StartNew();
        int cases = 0, loaded = 0, ran = 0;
        while (cases < count && sw.Elapsed < TimeSpan.FromSeconds(20))
        {
            var seed = seeds[cases % seeds.Count];
            var other = seeds[rng.Next(seeds.Count)].Model;
            var (bytes, what) = structural ? MutateStructure(rng, seed.Model, other) : Mutate(rng, seed.Model, other);
            cases++;
            OnnxModel model;
            try { model = OnnxModel.Load(bytes, "mutant"); }
            catch (Exception e) when (Documented(e, running: false)) { continue; }
            catch (Exception e) { throw new Xunit.Sdk.XunitException($"case {cases}, {seed.Name} ({what}): Load threw {e}"); }
            loaded++;
            try
            {
                model.CreateSession().Run(seed.Inputs());
                ran++;
            }
            catch (Exception e) when (Documented(e, running: true)) { }
            catch (Exception e) { throw new Xunit.Sdk.XunitException($"case {cases}, {seed.Name} ({what}): Run threw {e}"); }
        }
        output.WriteLine($"{cases} mutants in {sw.Elapsed.TotalSeconds:F1} s: {loaded} loaded, {ran} ran");
        Assert.True(cases >= 1000, $"only {cases} cases ran in {sw.Elapsed}");
        Assert.True(loaded > cases / 20 && loaded < cases, $"{loaded} of {cases} mutants loaded: the mutations should both pass and fail");
        Assert.True(ran > 0, $"no mutant ran ({loaded} loaded of {cases})");
    }

    [Fact]
    public void Mutated_test_inputs_parse_and_run_or_fail_as_documented()
    {
        var seeds = Seeds.Value.Where(s => s.InputFiles.Length > 0).ToList();
        var models = new Dictionary<string, OnnxModel?>();
        var rng = new Random(1130);
        var sw = Stopwatch.StartNew();
        int cases = 0, parsed = 0, ran = 0;
        while (cases < 3000 && sw.Elapsed < TimeSpan.FromSeconds(15))
        {
            var seed = seeds[cases % seeds.Count];
            int k = rng.Next(seed.InputFiles.Length);
            var (bytes, what) = Mutate(rng, seed.InputFiles[k], seeds[rng.Next(seeds.Count)].InputFiles[0]);
            cases++;
            OnnxTensor t;
            try { t = OnnxTensor.Parse(bytes, $"input_{k}.pb"); }
            catch (InvalidDataException e) { Assert.Contains($"input_{k}.pb", e.Message); continue; }
            catch (Exception e) { throw new Xunit.Sdk.XunitException($"case {cases}, {seed.Name} input_{k}.pb ({what}): Parse threw {e}"); }
            parsed++;
            if (!models.TryGetValue(seed.Name, out var model))
            {
                try { model = OnnxModel.Load(seed.Model, seed.Name); } catch (NotSupportedException) { model = null; }
                models[seed.Name] = model;
            }
            if (model is null) continue;
            var inputs = seed.Inputs();
            inputs[k] = t;
            try { model.CreateSession().Run(inputs); ran++; }
            catch (Exception e) when (Documented(e, running: true)) { }
            catch (Exception e) { throw new Xunit.Sdk.XunitException($"case {cases}, {seed.Name} input_{k}.pb ({what}): Run threw {e}"); }
        }
        output.WriteLine($"{cases} mutants in {sw.Elapsed.TotalSeconds:F1} s: {parsed} parsed, {ran} ran");
        Assert.True(cases >= 1000, $"only {cases} cases ran in {sw.Elapsed}");
        Assert.True(parsed > cases / 20 && parsed < cases, $"{parsed} of {cases} mutated inputs parsed");
    }
}
