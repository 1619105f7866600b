using RnnSimd.Layers;

namespace RnnSimd.Peers.Runners;

/// <summary>
/// The initial state of a char-LM training workload, the same for every implementation: the recurrent weights of
/// <see cref="Workload.CreateNetwork"/>, the head Linear(H, V) from PyTorch's default U(-1/sqrt(H), 1/sqrt(H)) seeded,
/// and the data. Names are PyTorch's: the recurrent module's own (weight_ih_l0, ...) and "head.weight", "head.bias".
/// </summary>
internal sealed class CharLmInit
{
    public CharLmInit(Workload w, string cell)
    {
        if (!w.Training) throw new ArgumentException($"{w.Id} is not a training workload.", nameof(w));
        Workload = w;
        Net = w.CreateNetwork(cell);
        int V = w.Vocabulary, H = w.Hidden;
        float k = 1f / MathF.Sqrt(H);
        HeadWeight = BenchData.Uniform(V * H, 21, k);              // (V, H)
        HeadBias = BenchData.Uniform(V, 22, k);                    // (V)
        Data = new CharLmData(w);
    }

    public Workload Workload { get; }
    public RecurrentNetwork Net { get; }
    public float[] HeadWeight { get; }
    public float[] HeadBias { get; }
    public CharLmData Data { get; }

    /// <summary>Every parameter, recurrent then head, with its PyTorch name.</summary>
    public IEnumerable<(string Name, float[] Values)> Parameters()
    {
        foreach (var e in Net.Parameters.Entries) yield return (e.Name, Net.Parameters.View(e).ToArray());
        yield return ("head.weight", HeadWeight);
        yield return ("head.bias", HeadBias);
    }
}

/// <summary>
/// The training step's reference for the check, NOT a benchmark: RnnSimd's Forward / Backward for the recurrent part,
/// and the head, softmax cross-entropy (mean over T*B) and Adam written out naively in double from the equations:
/// logits = out W^T + b; loss = mean_r -log softmax(logits_r)[target_r]; dlogits = (softmax - onehot) / (T*B);
/// dW = dlogits^T out; db = sum_r dlogits; dout = dlogits W; then BPTT; then Adam as torch.optim.Adam
/// (m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)).
/// The timed RnnSimd implementation (<see cref="RnnSimdTrain"/>, the library's loss and optimizer) must return the same
/// quantities as this one from its Check.
/// </summary>
internal sealed class CharLmReference : IRunner
{
    private readonly Workload _w;
    private readonly string _cell;

    public CharLmReference(Workload w, string cell) { _w = w; _cell = cell; }

    public void Run() => throw new NotSupportedException("a reference is not timed.");

    public IReadOnlyList<Quantity> Check()
    {
        var init = new CharLmInit(_w, _cell);
        var net = init.Net;
        var data = init.Data;
        int T = _w.Steps, B = _w.Batch, V = _w.Vocabulary, H = _w.Hidden, N = T * B;
        var ws = net.CreateWorkspace(T, B);
        var output = new float[N * H];                                         // (T, B, H) = (N, H)
        net.Forward(data.OneHot, T, B, [], [], output, [], [], ws);

        float[] W = init.HeadWeight, b = init.HeadBias;                        // (V, H), (V)
        var dW = new double[V * H];
        var db = new double[V];
        var dOut = new float[N * H];                                           // (N, H)
        var p = new double[V];
        double loss = 0;
        for (int r = 0; r < N; r++)
        {
            var o = output.AsSpan(r * H, H);
            double max = double.NegativeInfinity;
            for (int v = 0; v < V; v++)
            {
                double z = b[v];
                var wv = W.AsSpan(v * H, H);
                for (int h = 0; h < H; h++) z += (double)wv[h] * o[h];
                p[v] = z;
                max = Math.Max(max, z);
            }
            double sum = 0;
            for (int v = 0; v < V; v++) { p[v] = Math.Exp(p[v] - max); sum += p[v]; }
            int target = (int)data.Targets[r];
            loss += -Math.Log(p[target] / sum);
            for (int v = 0; v < V; v++)
            {
                double g = (p[v] / sum - (v == target ? 1 : 0)) / N;               // dL/dlogits[r, v]
                db[v] += g;
                for (int h = 0; h < H; h++) dW[v * H + h] += g * o[h];
                p[v] = g;
            }
            for (int h = 0; h < H; h++)
            {
                double s = 0;
                for (int v = 0; v < V; v++) s += p[v] * W[v * H + h];
                dOut[r * H + h] = (float)s;
            }
        }
        loss /= N;

        net.ZeroGradients();
        net.Backward(ws, dOut, [], [], [], [], []);

        var results = new List<Quantity> { new("loss", [(float)loss]) };
        var grads = new List<(string Name, float[] Param, double[] Grad)>();
        foreach (var e in net.Parameters.Entries)
            grads.Add((e.Name, net.Parameters.View(e).ToArray(), net.Gradients.View(e).ToArray().Select(g => (double)g).ToArray()));
        grads.Add(("head.weight", (float[])W.Clone(), dW));
        grads.Add(("head.bias", (float[])b.Clone(), db));
        foreach (var (name, _, g) in grads) results.Add(new("grad." + name, g.Select(x => (float)x).ToArray()));
        foreach (var (name, param, g) in grads) results.Add(new("param." + name, AdamFirstStep(param, g)));
        return results;
    }

    /// <summary>torch.optim.Adam's first step (t = 1, m = v = 0) from the formula, in double.</summary>
    private static float[] AdamFirstStep(float[] param, double[] grad)
    {
        const double lr = Workload.LearningRate, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        const int t = 1;
        var next = new float[param.Length];
        for (int i = 0; i < param.Length; i++)
        {
            double g = grad[i];
            double m = (1 - b1) * g, v = (1 - b2) * g * g;
            double mHat = m / (1 - Math.Pow(b1, t)), vHat = v / (1 - Math.Pow(b2, t));
            next[i] = (float)(param[i] - lr * mHat / (Math.Sqrt(vHat) + eps));
        }
        return next;
    }

    public void Dispose() { }
}
