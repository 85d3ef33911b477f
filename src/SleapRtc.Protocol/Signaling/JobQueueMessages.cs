using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace SleapRtc.Protocol.Signaling;

/// <summary>
/// Our signaling extension for the room job queue and job records. The server holds tickets and records
/// only, never package bytes: a queued ticket ends in <see cref="Assigned"/> (the server has reserved a worker
/// for the submitter), after which the client offers to that worker exactly as for a direct submission.
///
/// Announcement: our server lists <see cref="ServerFeature"/> in <c>registered_auth</c> under
/// <see cref="ServerExtensionsKey"/>; classic servers do not, and our client then refuses <c>-Queue</c> with a
/// clear error instead of sending types a classic server would answer UNKNOWN_MESSAGE_TYPE to. Classic peers
/// never receive any of these types: the server sends them only to peers that sent one first (clients) or that
/// advertise <see cref="SleapRtc.Protocol.Jobs.JobExtensions.MetadataProperty"/> (workers).
/// </summary>
public static class JobQueueMessages
{
    /// <summary>Key of registered_auth listing the server's extensions.</summary>
    public const string ServerExtensionsKey = "server_extensions";
    public const string ServerFeature = "job_queue";

    // client → server
    /// <summary><c>{type, job_id, kind, package_name, package_sha256, package_bytes, priority, requirements, overrides}</c> → <see cref="Ticket"/>.</summary>
    public const string Submit = "queue_submit";
    /// <summary><c>{type, job_id?, state?}</c> → <see cref="List"/> with <c>jobs: [JobRecord]</c> of the sender's room.</summary>
    public const string List = "job_list";
    /// <summary><c>{type, job_id, keep_checkpoint}</c> → <see cref="CancelAccepted"/> with the record; forwarded to the worker when running.</summary>
    public const string Cancel = "job_cancel";

    // server → client
    /// <summary>Answer to <see cref="Submit"/>: <c>{type, job_id, position, record}</c>.</summary>
    public const string Ticket = "queue_ticket";
    /// <summary>Pushed to the submitter when its ticket's position changes: <c>{type, job_id, position}</c>.</summary>
    public const string Position = "queue_position";
    /// <summary>Pushed to the submitter: <c>{type, job_id, worker_id}</c>; the worker is reserved for the submitter.</summary>
    public const string Assigned = "queue_assigned";
    /// <summary>Answer to <see cref="Cancel"/>: <c>{type, job_id, record}</c>.</summary>
    public const string CancelAccepted = "job_cancel_accepted";

    // worker → server
    /// <summary><c>{type, record: JobRecord}</c>: a state or progress change of a job the worker holds; no answer.</summary>
    public const string Update = "job_update";
    // server → worker: <see cref="Cancel"/> with <c>{type, job_id, keep_checkpoint, sender}</c>.

    /// <summary>Key of an <c>offer</c> saying what the connection is for; <see cref="CollectPurpose"/> marks a result
    /// collection, which our server relays to a busy worker without reserving it.</summary>
    public const string OfferPurposeKey = "purpose";
    public const string CollectPurpose = "collect";
    /// <summary>An offer that resumes a cut-off upload (issue 16): relayed to the worker reserved for that job without a new
    /// reservation; the worker serves it only while it keeps the job's partial upload.</summary>
    public const string ResumePurpose = "resume";
    /// <summary>A connection test (Test-SleapConnection): like a collection it reserves nothing; the worker answers
    /// <see cref="SleapRtc.Protocol.Jobs.JobMessages.Ping"/> after the channel proof, and serves nothing else on it.</summary>
    public const string ProbePurpose = "probe";

    /// <summary>True for the purposes that reach a worker whatever its status and reserve nothing.</summary>
    public static bool ReservesNothing(string? purpose) => purpose is CollectPurpose or ProbePurpose;

    /// <summary>Error codes (coded error shape, with in_reply_to).</summary>
    public const string JobNotFound = "JOB_NOT_FOUND";
    public const string TicketRejected = "TICKET_REJECTED";
}

/// <summary>Job ids as our clients make them and every layer checks them: "job_" and 8-32 lowercase hex digits.</summary>
public static class JobIds
{
    public const string Pattern = "^job_[0-9a-f]{8,32}$";
    private static readonly System.Text.RegularExpressions.Regex Shape = new(Pattern, System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>A new id: "job_" and 12 lowercase hex digits (the worker adopts it when it is new there).</summary>
    public static string New() => "job_" + Guid.NewGuid().ToString("N").Substring(0, 12);

    public static bool IsWellFormed(string? jobId) => jobId is not null && Shape.IsMatch(jobId);
}

/// <summary>The job states of a record, as they appear on the wire and in <c>SleapRtc.JobInfo.State</c>.</summary>
public static class JobStates
{
    public const string Queued = "Queued";
    public const string Uploading = "Uploading";
    public const string Running = "Running";
    public const string Succeeded = "Succeeded";
    public const string Failed = "Failed";
    public const string Cancelled = "Cancelled";

    public static readonly IReadOnlyList<string> All = new[] { Queued, Uploading, Running, Succeeded, Failed, Cancelled };

    public static bool IsFinished(string? state) => state is Succeeded or Failed or Cancelled;

    /// <summary>The canonical spelling of <paramref name="state"/> (case-insensitive), or null when it is not a state.</summary>
    public static string? Normalize(string? state) => All.FirstOrDefault(s => string.Equals(s, state, StringComparison.OrdinalIgnoreCase));
}

/// <summary>What a ticket asks of the worker that takes it.</summary>
public sealed class TicketRequirements
{
    public long MinGpuMemoryMb { get; set; }
    public string[] Tags { get; set; } = Array.Empty<string>();
    /// <summary>Pinned worker; null for any matching worker.</summary>
    public string? WorkerId { get; set; }
}

/// <summary>Trainer overrides of a job (passed to <c>sleap-nn train</c> as <c>trainer_config.…=</c> overrides by the worker).</summary>
public sealed class TrainingOverrides
{
    public int? MaxEpochs { get; set; }
    public int? BatchSize { get; set; }
    public double? LearningRate { get; set; }
    public string? RunName { get; set; }
    /// <summary>Name of the checkpoint folder the client sends before the package (see the worker's resume handling).</summary>
    public string? ResumeFrom { get; set; }

    public bool IsEmpty => MaxEpochs is null && BatchSize is null && LearningRate is null && RunName is null && ResumeFrom is null;
}

/// <summary>The progress a record carries (the last one the worker reported).</summary>
public sealed class JobRecordProgress
{
    public string? ConfigName { get; set; }
    public int ConfigIndex { get; set; }
    public int ConfigCount { get; set; }
    public int Epoch { get; set; }
    public int EpochCount { get; set; }
    public double? Loss { get; set; }
    public double? ValLoss { get; set; }
    /// <summary>Training loss per finished epoch of the current config (the monitor draws it); capped by the sender.</summary>
    public double[] LossHistory { get; set; } = Array.Empty<double>();
}

/// <summary>
/// One job's record as the server keeps it and as it travels (snake_case JSON). Times are Unix milliseconds.
/// </summary>
public sealed class JobRecord
{
    public string JobId { get; set; } = "";
    public string RoomId { get; set; } = "";
    /// <summary><c>train</c> or <c>track</c>.</summary>
    public string Kind { get; set; } = "train";
    public string State { get; set; } = JobStates.Queued;
    public string? PackageName { get; set; }
    public string? PackageSha256 { get; set; }
    public long PackageBytes { get; set; }
    /// <summary>Peer id of the client that submitted it.</summary>
    public string? Submitter { get; set; }
    public string? WorkerId { get; set; }
    /// <summary>The worker's machine (host name): several GPU workers of one host share it.</summary>
    public string? MachineId { get; set; }
    public int Priority { get; set; }
    public TicketRequirements? Requirements { get; set; }
    public TrainingOverrides? Overrides { get; set; }
    /// <summary>1-based place in the room's queue while <see cref="JobStates.Queued"/>; null otherwise.</summary>
    public int? Position { get; set; }
    public long CreatedAt { get; set; }
    public long? AssignedAt { get; set; }
    public long? StartedAt { get; set; }
    public long? FinishedAt { get; set; }
    public JobRecordProgress? Progress { get; set; }
    public string? Error { get; set; }
    /// <summary>True while the worker still holds the job's results for collection.</summary>
    public bool ResultsAvailable { get; set; }
    public long? ResultsExpireAt { get; set; }
    /// <summary>How the worker authenticated the submitting client's channel (<see cref="SleapRtc.Protocol.Jobs.ChannelAuthStatus"/>); null when not reported.</summary>
    public string? ChannelAuth { get; set; }

    private static readonly JsonSerializerOptions WireJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public JsonObject ToJson() => (JsonObject)JsonSerializer.SerializeToNode(this, WireJson)!;

    public string ToWire() => JsonSerializer.Serialize(this, WireJson);

    /// <summary>Reads a record; null when the node is not an object of the right shape (untrusted input).</summary>
    public static JobRecord? FromJson(JsonNode? node)
    {
        if (node is not JsonObject) return null;
        try { return node.Deserialize<JobRecord>(WireJson); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException) { return null; }
    }

    public static JobRecord? FromWire(string json)
    {
        try { return JsonSerializer.Deserialize<JobRecord>(json, WireJson); }
        catch (JsonException) { return null; }
    }

    public JobRecord Clone() => FromWire(ToWire())!;
}
