using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Jobs;

/// <summary>
/// Reads what peers send about jobs (a ticket from a client, a record from a worker) into records the server may
/// keep: every field checked or bounded, since all of it is untrusted and ends up stored, listed and shown.
/// </summary>
internal static class JobInput
{
    public const int MinPriority = -100;
    public const int MaxPriority = 100;
    public const int MaxTags = 16;
    public const int MaxTagLength = 64;
    public const int MaxNameLength = 256;
    public const int MaxPeerIdLength = 128;
    public const int MaxErrorLength = 2_000;
    /// <summary>Loss points kept per record (the monitor's curve); the newest are kept.</summary>
    public const int MaxLossHistory = 200;

    private static readonly Regex Sha256Pattern = new("^[0-9a-fA-F]{64}$", RegexOptions.CultureInvariant);
    private static readonly Regex RunNamePattern = new("^[A-Za-z0-9_.-]{1,64}$", RegexOptions.CultureInvariant);

    public static bool IsJobId(string? jobId) => JobIds.IsWellFormed(jobId);

    /// <summary>The ticket of a queue_submit, or null with <paramref name="problem"/> saying what is wrong.</summary>
    public static JobRecord? ReadTicket(JsonObject message, out string problem)
    {
        problem = "";
        var jobId = message.GetString("job_id");
        if (!IsJobId(jobId)) return Fail(out problem, "job_id must look like job_ followed by 8 to 32 lowercase hex digits.");
        var kind = message.GetString("kind") ?? "train";
        if (kind is not ("train" or "track")) return Fail(out problem, "kind must be train or track.");
        var packageName = message.GetString("package_name");
        if (packageName is { Length: > MaxNameLength }) return Fail(out problem, $"package_name is longer than {MaxNameLength} characters.");
        var sha = message.GetString("package_sha256");
        if (sha is not null && !Sha256Pattern.IsMatch(sha)) return Fail(out problem, "package_sha256 must be 64 hex digits.");
        if (!TryLong(message["package_bytes"], 0, long.MaxValue, out var bytes)) return Fail(out problem, "package_bytes must be a non-negative whole number.");
        if (!TryLong(message["priority"], MinPriority, MaxPriority, out var priority)) return Fail(out problem, $"priority must be a whole number from {MinPriority} to {MaxPriority}.");

        TicketRequirements? requirements = null;
        if (message["requirements"] is JsonObject asked)
        {
            requirements = new TicketRequirements();
            if (!TryLong(asked["min_gpu_memory_mb"], 0, long.MaxValue, out var memory)) return Fail(out problem, "requirements.min_gpu_memory_mb must be a non-negative whole number.");
            requirements.MinGpuMemoryMb = memory;
            if (asked["tags"] is JsonArray tags)
            {
                if (tags.Count > MaxTags) return Fail(out problem, $"requirements.tags may name at most {MaxTags} tags.");
                var names = new List<string>();
                foreach (var tag in tags)
                {
                    if (tag is not JsonValue v || !v.TryGetValue<string>(out var name) || name.Length is 0 or > MaxTagLength)
                        return Fail(out problem, $"requirements.tags must be strings of 1 to {MaxTagLength} characters.");
                    names.Add(name);
                }
                requirements.Tags = names.Distinct(StringComparer.Ordinal).ToArray();
            }
            else if (asked["tags"] is not null) return Fail(out problem, "requirements.tags must be an array.");
            var worker = asked.GetString("worker_id");
            if (worker is { Length: 0 or > MaxPeerIdLength }) return Fail(out problem, $"requirements.worker_id must be 1 to {MaxPeerIdLength} characters.");
            requirements.WorkerId = worker;
        }
        else if (message["requirements"] is not null) return Fail(out problem, "requirements must be an object.");

        TrainingOverrides? overrides = null;
        if (message["overrides"] is JsonObject given)
        {
            overrides = JobRecord.FromJson(new JsonObject { ["overrides"] = given.DeepClone() })?.Overrides;
            if (overrides is null) return Fail(out problem, "overrides has fields of the wrong type.");
            if (OverrideProblem(overrides) is { } bad) return Fail(out problem, bad);
            if (overrides.IsEmpty) overrides = null;
        }
        else if (message["overrides"] is not null) return Fail(out problem, "overrides must be an object.");

        return new JobRecord
        {
            JobId = jobId!, Kind = kind, State = JobStates.Queued, PackageName = packageName, PackageSha256 = sha?.ToLowerInvariant(),
            PackageBytes = bytes, Priority = (int)priority, Requirements = requirements, Overrides = overrides,
        };
    }

    /// <summary>The same bounds the worker applies before it passes an override to the trainer (a record shows them).</summary>
    private static string? OverrideProblem(TrainingOverrides o)
    {
        if (o.MaxEpochs is < 1 or > 100_000) return "overrides.max_epochs must be 1 to 100000.";
        if (o.BatchSize is < 1 or > 65_536) return "overrides.batch_size must be 1 to 65536.";
        if (o.LearningRate is { } lr && !(lr > 0 && lr <= 10)) return "overrides.learning_rate must be above 0 and at most 10.";
        if (o.RunName is { } run && !RunNamePattern.IsMatch(run)) return "overrides.run_name must be 1 to 64 of A-Z a-z 0-9 _ . -";
        if (o.ResumeFrom is { } resume && (resume.Length is 0 or > MaxNameLength || resume.IndexOfAny(['/', '\\']) >= 0 || resume is "." or ".."))
            return "overrides.resume_from must be a folder name.";
        return null;
    }

    /// <summary>A worker's job_update record with what it may not set dropped and everything bounded; null when unusable.</summary>
    public static JobRecord? ReadWorkerReport(JsonNode? node)
    {
        var report = JobRecord.FromJson(node);
        if (report is null || !IsJobId(report.JobId) || JobStates.Normalize(report.State) is not { } state || state == JobStates.Queued) return null;
        report.State = state;
        report.Error = Cut(report.Error, MaxErrorLength);
        report.MachineId = Cut(report.MachineId, MaxPeerIdLength);
        report.PackageName = Cut(report.PackageName, MaxNameLength);
        if (report.PackageSha256 is { } sha && !Sha256Pattern.IsMatch(sha)) report.PackageSha256 = null;
        if (report.PackageBytes < 0) report.PackageBytes = 0;
        if (report.Kind is not ("train" or "track")) report.Kind = "train";
        if (report.ChannelAuth is not (null or ChannelAuthStatus.Verified or ChannelAuthStatus.Unverified)) report.ChannelAuth = null;
        if (report.Progress is { } progress)
        {
            progress.ConfigName = Cut(progress.ConfigName, MaxNameLength);
            progress.Loss = Finite(progress.Loss);
            progress.ValLoss = Finite(progress.ValLoss);
            var history = (progress.LossHistory ?? []).Where(double.IsFinite).ToArray();
            progress.LossHistory = history.Length > MaxLossHistory ? history.Skip(history.Length - MaxLossHistory).ToArray() : history;
        }
        return report;
    }

    private static double? Finite(double? value) => value is { } v && double.IsFinite(v) ? v : null;

    private static string? Cut(string? text, int length) => text is null || text.Length <= length ? text : text[..length];

    private static bool TryLong(JsonNode? node, long min, long max, out long value)
    {
        value = 0;
        if (node is null) return true;
        if (node is not JsonValue v) return false;
        if (v.TryGetValue<long>(out value)) return value >= min && value <= max;
        if (v.TryGetValue<double>(out var d) && d == Math.Floor(d) && d >= min && d <= max)
        {
            value = (long)d;
            return true;
        }
        return false;
    }

    private static JobRecord? Fail(out string problem, string why)
    {
        problem = why;
        return null;
    }
}
