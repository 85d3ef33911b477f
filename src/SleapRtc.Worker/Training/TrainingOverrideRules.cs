using System.Globalization;
using System.Text.RegularExpressions;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Worker.Training;

/// <summary>
/// The training overrides a client may send in its hello (issue 12 contract): their ranges, and how each becomes a
/// <c>trainer_config.…=</c> override of every <c>sleap-nn train</c> command. Checked before anything runs: one bad
/// value refuses the job (<c>bad_override</c>).
/// </summary>
public static class TrainingOverrideRules
{
    public const string MaxEpochsKey = "trainer_config.max_epochs";
    public const string BatchSizeKey = "trainer_config.train_data_loader.batch_size";
    public const string LearningRateKey = "trainer_config.optimizer.lr";
    public const string RunNameKey = "trainer_config.run_name";
    public const string ResumeKey = "trainer_config.resume_ckpt_path";
    /// <summary>The checkpoint file a resume folder must hold (the one sleap-nn resumes from).</summary>
    public const string ResumeCheckpointFile = "best.ckpt";
    /// <summary>FILE_META name of the zipped checkpoint folder the client sends before the package.</summary>
    public static string ResumeFileName(string folder) => "resume-" + folder + ".zip";

    private static readonly Regex RunName = new("^[A-Za-z0-9_.-]{1,64}$", RegexOptions.CultureInvariant);
    private static readonly Regex FolderName = new("^[A-Za-z0-9_.-]{1,128}$", RegexOptions.CultureInvariant);

    /// <returns>Null when every value is in range; else what is wrong, for the client.</returns>
    public static string? Check(TrainingOverrides? overrides)
    {
        if (overrides is null) return null;
        if (overrides.MaxEpochs is { } epochs && epochs is < 1 or > 100_000) return $"max_epochs must be 1..100000 (got {epochs}).";
        if (overrides.BatchSize is { } batch && batch is < 1 or > 65_536) return $"batch_size must be 1..65536 (got {batch}).";
        if (overrides.LearningRate is { } lr && (double.IsNaN(lr) || lr <= 0 || lr > 10))
            return $"learning_rate must be greater than 0 and at most 10 (got {lr.ToString(CultureInfo.InvariantCulture)}).";
        if (overrides.RunName is { } name && !RunName.IsMatch(name)) return "run_name must be 1 to 64 letters, digits, '_', '.' or '-'.";
        if (overrides.ResumeFrom is { } folder && (!FolderName.IsMatch(folder) || folder is "." or ".."))
            return "resume_from must be a checkpoint folder name (letters, digits, '_', '.', '-'), not a path.";
        return null;
    }

    /// <summary>The overrides for one config of a package with <paramref name="configCount"/> configs.</summary>
    /// <param name="resumeCheckpoint">The unpacked best.ckpt of resume_from, or null.</param>
    public static IReadOnlyList<string> ToArguments(TrainingOverrides? overrides, string configStem, int configCount, string? resumeCheckpoint)
    {
        var arguments = new List<string>();
        if (overrides is null) return arguments;
        if (overrides.MaxEpochs is { } epochs) arguments.Add($"{MaxEpochsKey}={epochs.ToString(CultureInfo.InvariantCulture)}");
        if (overrides.BatchSize is { } batch) arguments.Add($"{BatchSizeKey}={batch.ToString(CultureInfo.InvariantCulture)}");
        if (overrides.LearningRate is { } lr) arguments.Add($"{LearningRateKey}={lr.ToString("R", CultureInfo.InvariantCulture)}");
        // Several configs under one run name would write into one folder: each gets the name plus its own stem.
        if (overrides.RunName is { } name) arguments.Add($"{RunNameKey}={(configCount > 1 ? name + "." + configStem : name)}");
        if (resumeCheckpoint is not null) arguments.Add($"{ResumeKey}={resumeCheckpoint}");
        return arguments;
    }
}
