using System.Text.Json.Nodes;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Client;

/// <summary>Where a queued ticket stands (pushed by the server to the submitter).</summary>
public sealed record TicketPosition(string JobId, int Position);

/// <summary>The server reserved <paramref name="WorkerId"/> for the submitter of <paramref name="JobId"/>: offer to it now.</summary>
public sealed record TicketAssignment(string JobId, string WorkerId);

/// <summary>A cancel of a job this worker holds, forwarded by the server from <paramref name="RequestedBy"/>.</summary>
public sealed record JobCancelRequest(string JobId, bool KeepCheckpoint, string? RequestedBy);

/// <summary>The job-queue extension (<see cref="JobQueueMessages"/>): tickets and records for clients, reports for workers.</summary>
public sealed partial class SignalingClient
{
    /// <summary>A ticket of this client moved in the queue.</summary>
    public event Action<TicketPosition>? TicketPositionChanged;
    /// <summary>A ticket of this client got its worker (reserved for this client).</summary>
    public event Action<TicketAssignment>? TicketAssigned;
    /// <summary>Workers: someone in the room asked to stop a job this worker holds.</summary>
    public event Action<JobCancelRequest>? JobCancelRequested;

    /// <summary>True when the server announced the job queue in its last registered_auth (classic servers do not).</summary>
    public bool ServerSupportsJobQueue => ServerAnnounced(JobQueueMessages.ServerFeature);

    /// <summary>True when the server claims inference space names atomically at registration (<see cref="SpaceMetadata.ServerFeature"/>).</summary>
    public bool ServerClaimsSpaceNames => ServerAnnounced(SpaceMetadata.ServerFeature);

    private bool ServerAnnounced(string feature) =>
        Registration?.Raw[JobQueueMessages.ServerExtensionsKey] is JsonArray features
        && features.Any(f => f is JsonValue v && v.TryGetValue<string>(out var name) && name == feature);

    /// <summary>Puts a ticket in the room's queue; returns the record with its position. Throws <see cref="SignalingException"/> when refused.</summary>
    public async Task<JobRecord> SubmitTicketAsync(JobRecord ticket, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        RequireJobQueue();
        var request = new JsonObject
        {
            ["type"] = JobQueueMessages.Submit,
            ["job_id"] = ticket.JobId,
            ["kind"] = ticket.Kind,
            ["package_name"] = ticket.PackageName,
            ["package_sha256"] = ticket.PackageSha256,
            ["package_bytes"] = ticket.PackageBytes,
            ["priority"] = ticket.Priority,
            ["requirements"] = ticket.Requirements is null ? null : JsonSerializerNode(ticket, "requirements"),
            ["overrides"] = ticket.Overrides is null ? null : JsonSerializerNode(ticket, "overrides"),
        };
        var answer = await RequestAsync(request, JobQueueMessages.Ticket, ct).ConfigureAwait(false);
        return JobRecord.FromJson(answer["record"]) ?? throw new SignalingException("The server answered queue_submit without a record.");
    }

    /// <summary>The room's job records, newest first; <paramref name="jobId"/> and <paramref name="state"/> narrow the list.</summary>
    public async Task<IReadOnlyList<JobRecord>> ListJobsAsync(string? jobId = null, string? state = null, CancellationToken ct = default)
    {
        RequireJobQueue();
        var request = new JsonObject { ["type"] = JobQueueMessages.List };
        if (jobId is not null) request["job_id"] = jobId;
        if (state is not null) request["state"] = state;
        var answer = await RequestAsync(request, JobQueueMessages.List, ct).ConfigureAwait(false);
        return answer["jobs"] is JsonArray jobs ? jobs.Select(JobRecord.FromJson).OfType<JobRecord>().ToList() : [];
    }

    /// <summary>Cancels a queued ticket, or asks the worker running the job to stop it; returns the record after the request.</summary>
    public async Task<JobRecord> CancelJobAsync(string jobId, bool keepCheckpoint = false, CancellationToken ct = default)
    {
        RequireJobQueue();
        var request = new JsonObject { ["type"] = JobQueueMessages.Cancel, ["job_id"] = jobId, ["keep_checkpoint"] = keepCheckpoint };
        var answer = await RequestAsync(request, JobQueueMessages.CancelAccepted, ct).ConfigureAwait(false);
        return JobRecord.FromJson(answer["record"]) ?? throw new SignalingException("The server answered job_cancel without a record.");
    }

    /// <summary>An offer with our <see cref="JobQueueMessages.OfferPurposeKey"/> (classic servers ignore the extra key).</summary>
    public Task SendOfferAsync(string target, string sdp, string? purpose, CancellationToken ct = default)
    {
        if (purpose is null) return SendOfferAsync(target, sdp, ct);
        return SendAsync(new JsonObject
        {
            ["type"] = MessageTypes.Offer, ["sender"] = RequirePeerId(), ["target"] = target, ["sdp"] = sdp, [JobQueueMessages.OfferPurposeKey] = purpose,
        }, ct);
    }

    /// <summary>Workers: reports a job's state or progress (fire and forget; the server answers nothing).</summary>
    public Task ReportJobAsync(JobRecord record, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        return SendAsync(new JsonObject { ["type"] = JobQueueMessages.Update, ["record"] = record.ToJson() }, ct);
    }

    private void DispatchJobPush(string type, JsonObject message)
    {
        var jobId = message.GetString("job_id");
        if (string.IsNullOrEmpty(jobId)) return;
        switch (type)
        {
            case JobQueueMessages.Position:
                if (message["position"] is JsonValue p && p.TryGetValue<int>(out var position))
                    Raise(TicketPositionChanged, new TicketPosition(jobId!, position));
                break;
            case JobQueueMessages.Assigned:
                if (message.GetString("worker_id") is { Length: > 0 } worker)
                    Raise(TicketAssigned, new TicketAssignment(jobId!, worker));
                break;
            case JobQueueMessages.Cancel:
                Raise(JobCancelRequested, new JobCancelRequest(jobId!, message.GetBool("keep_checkpoint"), message.GetString("sender")));
                break;
        }
    }

    private void RequireJobQueue()
    {
        if (!ServerSupportsJobQueue)
            throw new SignalingException("The signaling server has no job queue (it does not announce the job_queue extension; classic servers never do).");
    }

    private static JsonNode? JsonSerializerNode(JobRecord ticket, string key) => ticket.ToJson()[key]?.DeepClone();
}
