using System.Text.Json;
using System.Text.Json.Serialization;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// How our peers agree on the extensions (SHA-256 per file, structured progress, cancel) without a classic
/// peer ever seeing one: our worker advertises <see cref="MetadataProperty"/> in its registration
/// properties; our client sends <see cref="JobMessages.Hello"/> first only to a worker that advertises it;
/// our worker answers with <see cref="JobMessages.Welcome"/> and from then on may send extension messages.
/// A classic worker never receives the hello (it lacks the property), and a classic client never says hello,
/// so our worker never sends it an extension message.
/// </summary>
public static class JobExtensions
{
    /// <summary>Worker metadata property (integer protocol version) that announces the extensions.</summary>
    public const string MetadataProperty = "sleaprtc_ext";
    public const int Version = 2;
    /// <summary>The first version whose workers take (and whose clients make) the room-token proof of <see cref="ChannelAuthExchange"/>.</summary>
    public const int ChannelAuthVersion = 2;

    public const string FeatureSha256 = "sha256";
    public const string FeatureProgress = "progress";
    public const string FeatureCancel = "cancel";
    /// <summary>Both ends send SLEAPRTC_HEARTBEAT every ~2 s and declare the other dead after ~8 s of silence (classic: 15 s KEEP_ALIVE, 25 s).</summary>
    public const string FeatureHeartbeat = "heartbeat";
    /// <summary>A transfer cut off mid-file resumes over a new connection from the byte the receiver holds
    /// (SLEAPRTC_TRANSFER_AT / SLEAPRTC_TRANSFER_FROM; see <see cref="TransferPoint"/>).</summary>
    public const string FeatureResume = "resume";
    /// <summary>The client confirms the job's last word (its results, or its error) with SLEAPRTC_COLLECTED and the worker,
    /// once available again (its status acknowledged by the server, which ends the reservation), says SLEAPRTC_RELEASED; only
    /// then does the client consider the job over, so its next offer to that worker cannot meet "busy".</summary>
    public const string FeatureRelease = "release";
    public static readonly IReadOnlyList<string> AllFeatures = new[] { FeatureSha256, FeatureProgress, FeatureCancel, FeatureHeartbeat, FeatureResume, FeatureRelease };

    private static readonly JsonSerializerOptions WireJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string HelloMessage(string? jobId = null) =>
        JobMessages.Hello + JobMessages.Separator + JsonSerializer.Serialize(new Handshake { Version = Version, Features = AllFeatures.ToArray(), JobId = jobId }, WireJson);

    /// <summary>A client hello with the job's options (mode, overrides, worker package path); version and features are ours.</summary>
    public static string HelloMessage(Handshake hello)
    {
        var sent = new Handshake
        {
            Version = Version, Features = AllFeatures.ToArray(), JobId = hello.JobId, Mode = hello.Mode,
            Overrides = hello.Overrides, WorkerPackagePath = hello.WorkerPackagePath,
            ResumeUpload = hello.ResumeUpload, Partials = hello.Partials,
        };
        return JobMessages.Hello + JobMessages.Separator + JsonSerializer.Serialize(sent, WireJson);
    }

    public static string WelcomeMessage(string jobId) =>
        JobMessages.Welcome + JobMessages.Separator + JsonSerializer.Serialize(new Handshake { Version = Version, Features = AllFeatures.ToArray(), JobId = jobId }, WireJson);

    /// <summary>Reads a hello or welcome argument; null when it is not valid JSON of the right shape.</summary>
    public static Handshake? ParseHandshake(string argument)
    {
        try { return JsonSerializer.Deserialize<Handshake>(argument, WireJson); }
        catch (JsonException) { return null; }
    }

    public static string TransferAtMessage(TransferPoint point) =>
        JobMessages.TransferAt + JobMessages.Separator + JsonSerializer.Serialize(point, WireJson);

    public static TransferPoint? ParseTransferPoint(string json)
    {
        try { return JsonSerializer.Deserialize<TransferPoint>(json, WireJson); }
        catch (JsonException) { return null; }
    }

    public static string ProgressMessage(JobProgress progress) =>
        JobMessages.Progress + JobMessages.Separator + SerializeProgress(progress);

    public static string SerializeProgress(JobProgress progress) => JsonSerializer.Serialize(progress, WireJson);

    public static JobProgress? ParseProgress(string json)
    {
        try { return JsonSerializer.Deserialize<JobProgress>(json, WireJson); }
        catch (JsonException) { return null; }
    }

    public static string ErrorMessage(string code, string message) =>
        JobMessages.Format(JobMessages.Error, code, message.Replace(JobMessages.Separator, ": "));

    /// <summary>True when worker metadata properties announce a compatible extension version.</summary>
    public static bool IsAdvertised(IDictionary<string, object?> properties) => AdvertisedVersion(properties) >= 1;

    /// <summary>True when the worker takes the channel proof (<see cref="ChannelAuthExchange"/>); the client then always makes it.</summary>
    public static bool AdvertisesChannelAuth(IDictionary<string, object?> properties) => AdvertisedVersion(properties) >= ChannelAuthVersion;

    private static int AdvertisedVersion(IDictionary<string, object?> properties)
    {
        if (!properties.TryGetValue(MetadataProperty, out var value) || value is null) return 0;
        return value switch
        {
            int i => i,
            long l => (int)Math.Min(l, int.MaxValue),
            double d => d >= 1 ? (int)Math.Min(d, int.MaxValue) : 0,
            JsonElement { ValueKind: JsonValueKind.Number } e => e.TryGetInt32(out var n) ? n : 0,
            string s => int.TryParse(s, out var n) ? n : 0,
            _ => 0,
        };
    }

    public sealed class Handshake
    {
        public int Version { get; set; }
        public string[] Features { get; set; } = Array.Empty<string>();
        public string? JobId { get; set; }
        /// <summary>Client hello only: <see cref="ModeRun"/> (null means run) or <see cref="ModeCollect"/> (download a finished job's kept results).</summary>
        public string? Mode { get; set; }
        /// <summary>Client hello only: trainer overrides for every config of the package.</summary>
        public SleapRtc.Protocol.Signaling.TrainingOverrides? Overrides { get; set; }
        /// <summary>Client hello only: a package already under the worker's data root (relative name); nothing is uploaded.</summary>
        public string? WorkerPackagePath { get; set; }

        /// <summary>Client hello only, on a connection offered with purpose "resume": the upload of this job's package
        /// (name and size; the job is <see cref="JobId"/>) was cut off; the worker answers SLEAPRTC_TRANSFER_AT.</summary>
        public TransferPoint? ResumeUpload { get; set; }
        /// <summary>Collect hello only: result files the collector already holds in part; each is sent from its offset
        /// (SLEAPRTC_TRANSFER_FROM) when its prefix SHA-256 matches the worker's copy, else whole.</summary>
        public TransferPoint[]? Partials { get; set; }

        public const string ModeRun = "run";
        public const string ModeCollect = "collect";

        public bool Has(string feature) => Features is not null && Array.IndexOf(Features, feature) >= 0;
    }
}

/// <summary>Error codes carried by SLEAPRTC_ERROR (stable; clients map them to typed exceptions).</summary>
public static class JobErrorCodes
{
    public const string ChecksumMismatch = "checksum_mismatch";
    public const string BadPackage = "bad_package";
    public const string NoTrainScript = "no_train_script";
    public const string TrainerNotFound = "trainer_not_found";
    public const string Internal = "internal";
    public const string NoTrackScript = "no_track_script";
    public const string InferenceFailed = "inference_failed";
    public const string RequestTimeout = "request_timeout";
    /// <summary>Collect: the worker holds no results for that job id (never ran here, expired, or already collected).</summary>
    public const string JobNotFound = "job_not_found";
    /// <summary>A worker_package_path outside the data root, missing, or the worker has no data root.</summary>
    public const string BadWorkerPath = "bad_worker_path";
    /// <summary>An override value out of range or of the wrong kind.</summary>
    public const string BadOverride = "bad_override";
    /// <summary>A resume connection whose hello does not name the upload the worker keeps (job id, file name and size).</summary>
    public const string ResumeUnavailable = "resume_unavailable";
}
