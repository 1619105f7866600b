using System.Buffers.Binary;
using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Kernels;

namespace RnnSimd.Tests.Cells;

/// <summary>
/// PyTorch parity: the golden cases in tests/data/torch (written by tests/RnnSimd.TorchGolden from LibTorch 2.10 in
/// float64) run through `rnnsimd grad`'s computation at every kernel set. Error is normwise relative, ||a - e|| / ||e||,
/// against the float64 run: outputs within 2e-5, gradients within 1e-4 (LibTorch's own float32 lands within 2.5e-7
/// on these cases, see tests/data/torch/README.md).
/// </summary>
public class TorchParityTests
{
    public static string DataDir
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "tests", "data", "torch");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("tests/data/torch not found above " + AppContext.BaseDirectory);
        }
    }

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(DataDir, "*.safetensors").OrderBy(f => f)) data.Add(Path.GetFileName(f));
        return data;
    }

    internal static double[] ReadF64(SafeTensorsFile file, string name)
    {
        var t = file.GetTensor(name);
        var bytes = file.GetBytes(name).Span;
        if (t.DType != SafeTensorsDType.F64) return file.ReadFloats(name).Select(v => (double)v).ToArray();
        var v = new double[t.ElementCount];
        for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes.Slice(i * 8, 8));
        return v;
    }

    internal static double NormwiseError(float[] a, double[] e)
    {
        Assert.Equal(e.Length, a.Length);
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { num += (a[i] - e[i]) * (a[i] - e[i]); den += e[i] * e[i]; }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    [Theory, MemberData(nameof(Cases))]
    public void Matches_pytorch_float64_at_every_kernel_set(string caseFile)
    {
        var file = SafeTensorsFile.Read(Path.Combine(DataDir, caseFile));
        var saved = KernelSet.Default;
        foreach (var set in KernelSet.Supported)
        {
            var results = GradCommand.Compute(file, set);
            int checkedCount = 0;
            foreach (var (name, _, data) in results)
            {
                string expectedName = "expected." + name;
                Assert.True(file.TryGetTensor(expectedName, out _), $"{caseFile}: no {expectedName} in the golden file");
                double err = NormwiseError(data, ReadF64(file, expectedName));
                double limit = name.StartsWith("grad.", StringComparison.Ordinal) ? 1e-4 : 2e-5;
                Assert.True(err <= limit, $"{caseFile} [{set}] {name}: normwise relative error {err:E2} > {limit:E0}");
                checkedCount++;
            }
            Assert.True(checkedCount >= 6, $"{caseFile}: only {checkedCount} tensors compared");
        }
        Assert.Same(saved, KernelSet.Default);
    }
}
