namespace RnnSimd.Tests.Reference;

// The spec: torch.optim's documented update rules (the pseudo-code in the PyTorch docs of SGD, Adagrad, RMSprop,
// Adam and AdamW), written line by line in double over a flat vector of parameters. Hyper-parameters arrive as the
// float values the library uses, so both compute the same mathematical function.
//
// Beside each rule runs its "absolute run" (fields and locals ending in A): the same recurrences with every signed
// input replaced by its magnitude (|g|, |θ|), so that it bounds every term the float computation rounds, even when
// terms cancel. Magnitude[i] accumulates, per step, |θ_{t-1}| plus the absolute run of the step; the float result may
// differ from the double one by a few roundings of those terms per step (see OptimizerTests for the constant).

/// <summary>A reference optimizer over a flat parameter vector.</summary>
public abstract class NaiveOptimizer(int n)
{
    /// <summary>Steps taken (t of the last step).</summary>
    public int T { get; private set; }

    /// <summary>Σ over steps of |θ_{t-1}| + the absolute run of the update, per element (the error scale).</summary>
    public double[] Magnitude { get; } = new double[n];

    /// <summary>One step with gradient <paramref name="grad"/> and learning rate <paramref name="lr"/>.</summary>
    public void Step(double[] theta, float[] grad, float lr)
    {
        T++;
        for (int i = 0; i < theta.Length; i++) Magnitude[i] += Math.Abs(theta[i]);
        Update(theta, grad, lr);
    }

    /// <summary>The rule for step <see cref="T"/>.</summary>
    protected abstract void Update(double[] theta, float[] grad, double lr);
}

/// <summary>torch.optim.SGD.</summary>
public sealed class NaiveSgd(int n, float momentum, float dampening, float weightDecay, bool nesterov) : NaiveOptimizer(n)
{
    private readonly double[] _b = new double[n], _bA = new double[n];

    protected override void Update(double[] theta, float[] grad, double lr)
    {
        double mu = momentum, tau = dampening, lambda = weightDecay;
        for (int i = 0; i < theta.Length; i++)
        {
            double g = grad[i], gA = Math.Abs(g);
            if (lambda != 0) { g = g + lambda * theta[i]; gA += lambda * Math.Abs(theta[i]); }
            if (mu != 0)
            {
                if (T > 1) { _b[i] = mu * _b[i] + (1 - tau) * g; _bA[i] = mu * _bA[i] + (1 - tau) * gA; }
                else { _b[i] = g; _bA[i] = gA; }
                if (nesterov) { g = g + mu * _b[i]; gA += mu * _bA[i]; }
                else { g = _b[i]; gA = _bA[i]; }
            }
            theta[i] = theta[i] - lr * g;
            Magnitude[i] += lr * gA;
        }
    }
}

/// <summary>torch.optim.Adagrad.</summary>
public sealed class NaiveAdagrad : NaiveOptimizer
{
    private readonly double[] _sum;
    private readonly double _lrDecay, _lambda, _eps;

    public NaiveAdagrad(int n, float lrDecay, float weightDecay, float initialAccumulatorValue, float eps) : base(n)
    {
        _sum = Enumerable.Repeat((double)initialAccumulatorValue, n).ToArray();
        (_lrDecay, _lambda, _eps) = (lrDecay, weightDecay, eps);
    }

    protected override void Update(double[] theta, float[] grad, double lr)
    {
        double clr = lr / (1 + (T - 1) * _lrDecay);
        for (int i = 0; i < theta.Length; i++)
        {
            double g = grad[i], gA = Math.Abs(g);
            if (_lambda != 0) { g = g + _lambda * theta[i]; gA += _lambda * Math.Abs(theta[i]); }
            _sum[i] = _sum[i] + g * g;
            theta[i] = theta[i] - clr * g / (Math.Sqrt(_sum[i]) + _eps);
            Magnitude[i] += clr * gA / (Math.Sqrt(_sum[i]) + _eps);
        }
    }
}

/// <summary>torch.optim.RMSprop.</summary>
public sealed class NaiveRmsProp(int n, float alpha, float eps, float weightDecay, float momentum, bool centered) : NaiveOptimizer(n)
{
    private readonly double[] _v = new double[n], _b = new double[n], _gAve = new double[n];
    private readonly double[] _bA = new double[n], _gAveA = new double[n];

    protected override void Update(double[] theta, float[] grad, double lr)
    {
        double a = alpha, e = eps, lambda = weightDecay, mu = momentum;
        for (int i = 0; i < theta.Length; i++)
        {
            double g = grad[i], gA = Math.Abs(g);
            if (lambda != 0) { g = g + lambda * theta[i]; gA += lambda * Math.Abs(theta[i]); }
            _v[i] = a * _v[i] + (1 - a) * g * g;
            double vTilde = _v[i];
            double kappa = 1; // condition number of v - gAve², scales the relative error of the denominator
            if (centered)
            {
                _gAve[i] = _gAve[i] * a + (1 - a) * g;
                _gAveA[i] = _gAveA[i] * a + (1 - a) * gA;
                vTilde = vTilde - _gAve[i] * _gAve[i];
                kappa = (_v[i] + _gAveA[i] * _gAveA[i]) / vTilde;
            }
            if (mu > 0)
            {
                _b[i] = mu * _b[i] + g / (Math.Sqrt(vTilde) + e);
                _bA[i] = mu * _bA[i] + kappa * gA / (Math.Sqrt(vTilde) + e);
                theta[i] = theta[i] - lr * _b[i];
                Magnitude[i] += lr * _bA[i];
            }
            else
            {
                theta[i] = theta[i] - lr * g / (Math.Sqrt(vTilde) + e);
                Magnitude[i] += lr * kappa * gA / (Math.Sqrt(vTilde) + e);
            }
        }
    }
}

/// <summary>torch.optim.Adam, or torch.optim.AdamW when <paramref name="decoupled"/>.</summary>
public sealed class NaiveAdam(int n, float beta1, float beta2, float eps, float weightDecay, bool amsGrad, bool decoupled)
    : NaiveOptimizer(n)
{
    private readonly double[] _m = new double[n], _v = new double[n], _vMax = new double[n], _mA = new double[n];

    protected override void Update(double[] theta, float[] grad, double lr)
    {
        double b1 = beta1, b2 = beta2, e = eps, lambda = weightDecay;
        for (int i = 0; i < theta.Length; i++)
        {
            double g = grad[i], gA = Math.Abs(g);
            if (decoupled) { Magnitude[i] += lr * lambda * Math.Abs(theta[i]); theta[i] = theta[i] - lr * lambda * theta[i]; }
            else if (lambda != 0) { g = g + lambda * theta[i]; gA += lambda * Math.Abs(theta[i]); }
            _m[i] = b1 * _m[i] + (1 - b1) * g;
            _mA[i] = b1 * _mA[i] + (1 - b1) * gA;
            _v[i] = b2 * _v[i] + (1 - b2) * g * g;
            double mHat = _m[i] / (1 - Math.Pow(b1, T));
            double vHat;
            if (amsGrad)
            {
                _vMax[i] = Math.Max(_vMax[i], _v[i]);
                vHat = _vMax[i] / (1 - Math.Pow(b2, T));
            }
            else
            {
                vHat = _v[i] / (1 - Math.Pow(b2, T));
            }
            theta[i] = theta[i] - lr * mHat / (Math.Sqrt(vHat) + e);
            Magnitude[i] += lr * _mA[i] / (1 - Math.Pow(b1, T)) / (Math.Sqrt(vHat) + e);
        }
    }
}
