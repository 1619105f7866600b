namespace RnnSimd.Training;

/// <summary>What a <see cref="SequenceDataset"/>'s targets are.</summary>
public enum SequenceTargetKind
{
    /// <summary>Real values, learned with the mean squared error.</summary>
    Regression,
    /// <summary>Class indexes 0..classes-1, learned with softmax cross-entropy.</summary>
    Classification,
}
