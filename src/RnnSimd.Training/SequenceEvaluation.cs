namespace RnnSimd.Training;

/// <summary>The sequence task's held-out figures (<see cref="Trainer.EvaluateSequences"/>).</summary>
/// <param name="Loss">The mean loss over every valid prediction: MSE per target value (regression) or cross-entropy in nats per prediction (classification).</param>
/// <param name="Accuracy">Classification: the fraction of predictions whose largest logit is the target; regression: NaN.</param>
/// <param name="Predictions">The valid predictions scored (valid steps, or sequences when the targets are per sequence).</param>
/// <param name="OnValidationSet">True when scored on the validation set, false on the training set (no validation set was given).</param>
public readonly record struct SequenceEvaluation(double Loss, double Accuracy, long Predictions, bool OnValidationSet);
