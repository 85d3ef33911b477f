using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Jobs;

/// <summary>
/// The job-queue messages (<see cref="JobQueueMessages"/>) a peer sends: parse, check who may send what, hand over to
/// the <see cref="JobQueue"/> and answer through <c>reply</c>. The instance running the queue calls this for its own
/// peers (their socket) and for peers of other instances whose requests were forwarded to it (their registry link, which
/// publishes to their instance). Classic peers never send these types, and the server sends the pushes only to peers
/// that submitted tickets (clients) or advertise our extensions (workers).
/// </summary>
internal static class JobRequests
{
    private const string Component = "signaling";
    private const string WorkerRole = "worker";

    public static bool IsJobMessage(string type) => type is JobQueueMessages.Submit or JobQueueMessages.List or JobQueueMessages.Cancel or JobQueueMessages.Update;

    public static void Handle(JobQueue jobs, IPeerRegistry peers, ILogSink log, IPeerLink reply, string self, string room, string? role, string type, JsonObject message)
    {
        switch (type)
        {
            case JobQueueMessages.Submit: SubmitTicket(jobs, reply, self, room, message); break;
            case JobQueueMessages.List: ListJobs(jobs, reply, room, message); break;
            case JobQueueMessages.Cancel: CancelJob(jobs, peers, log, reply, self, room, message); break;
            case JobQueueMessages.Update: ReportJob(jobs, log, reply, self, room, role, message); break;
        }
    }

    private static void Send(IPeerLink peer, JsonObject message) => peer.TrySendUtf8(SignalingJson.ToUtf8(message));

    private static void SubmitTicket(JobQueue jobs, IPeerLink peer, string self, string room, JsonObject message)
    {
        var ticket = JobInput.ReadTicket(message, out var problem);
        var record = ticket is null ? null : jobs.Submit(room, self, ticket, out problem);
        if (record is null)
        {
            Send(peer, SignalingJson.CodedError(JobQueueMessages.TicketRejected, problem, JobQueueMessages.Submit));
            return;
        }
        Send(peer, new JsonObject { ["type"] = JobQueueMessages.Ticket, ["job_id"] = record.JobId, ["position"] = record.Position, ["record"] = record.ToJson() });
        // After the answer, so the submitter knows its ticket before it may hear that a worker took it.
        jobs.AssignWaiting(room);
    }

    private static void ListJobs(JobQueue jobs, IPeerLink peer, string room, JsonObject message)
    {
        var jobId = message.GetString("job_id");
        var state = message.GetString("state");
        var normalized = state is null ? null : JobStates.Normalize(state);
        if (state is not null && normalized is null)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, $"state must be one of {string.Join(", ", JobStates.All)}.", JobQueueMessages.List));
            return;
        }
        // Another room's job id is simply not in this room's list.
        var found = jobId is not null && !JobInput.IsJobId(jobId) ? [] : jobs.List(room, jobId, normalized);
        var list = new JsonArray();
        foreach (var job in found) list.Add(job.ToJson());
        Send(peer, new JsonObject { ["type"] = JobQueueMessages.List, ["jobs"] = list });
    }

    private static void CancelJob(JobQueue jobs, IPeerRegistry peers, ILogSink log, IPeerLink peer, string self, string room, JsonObject message)
    {
        var jobId = message.GetString("job_id");
        JobRecord? record = null;
        string? worker = null;
        var outcome = JobInput.IsJobId(jobId) ? jobs.Cancel(room, jobId!, self, out record, out worker) : CancelOutcome.NotFound;
        if (outcome == CancelOutcome.NotFound)
        {
            Send(peer, SignalingJson.CodedError(JobQueueMessages.JobNotFound, $"No job {Server.SignalingHub.Truncate(jobId ?? "")} in this room.", JobQueueMessages.Cancel));
            return;
        }
        if (outcome == CancelOutcome.ForwardToWorker)
        {
            var forwarded = new JsonObject
            {
                ["type"] = JobQueueMessages.Cancel, ["job_id"] = jobId, ["keep_checkpoint"] = message.GetBool("keep_checkpoint"), ["sender"] = self,
            };
            var delivered = worker is not null && peers.Get(worker) is { } target && target.RoomId == room && target.Link.TrySendUtf8(SignalingJson.ToUtf8(forwarded));
            log.Write(LogLevel.Information, Component, $"Cancel of job {jobId} by {self} " + (delivered ? $"forwarded to worker {worker}" : $"not delivered: worker {worker} is not connected"));
        }
        Send(peer, new JsonObject { ["type"] = JobQueueMessages.CancelAccepted, ["job_id"] = jobId, ["record"] = record!.ToJson() });
    }

    /// <summary>No answer on success (workers report fire-and-forget); a refusal is logged, and answered only when the message itself is malformed.</summary>
    private static void ReportJob(JobQueue jobs, ILogSink log, IPeerLink peer, string self, string room, string? role, JsonObject message)
    {
        if (role != WorkerRole)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "Only workers report jobs.", JobQueueMessages.Update));
            return;
        }
        if (JobInput.ReadWorkerReport(message["record"]) is not { } report)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "job_update needs a 'record' with a job_id and a state other than Queued.", JobQueueMessages.Update));
            return;
        }
        if (jobs.WorkerReport(room, self, report) is { } ignored)
            log.Write(LogLevel.Debug, Component, $"Ignored a job_update from {self} for {report.JobId}: {ignored}");
    }
}
