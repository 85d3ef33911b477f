using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Jobs;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// The job-queue messages (<see cref="JobQueueMessages"/>): parse, check who may send what, hand over to the
/// <see cref="JobQueue"/> and answer. Classic peers never send these types, and the server sends the pushes only
/// to peers that submitted tickets (clients) or advertise our extensions (workers).
/// </summary>
internal sealed partial class SignalingHub
{
    private const string WorkerRole = "worker";

    private static bool IsJobMessage(string type) => type is JobQueueMessages.Submit or JobQueueMessages.List or JobQueueMessages.Cancel or JobQueueMessages.Update;

    private void DispatchJobMessage(PeerSocket peer, string self, string room, string type, JsonObject message)
    {
        switch (type)
        {
            case JobQueueMessages.Submit: SubmitTicket(peer, self, room, message); break;
            case JobQueueMessages.List: ListJobs(peer, room, message); break;
            case JobQueueMessages.Cancel: CancelJob(peer, self, room, message); break;
            case JobQueueMessages.Update: ReportJob(peer, self, room, message); break;
        }
    }

    private void SubmitTicket(PeerSocket peer, string self, string room, JsonObject message)
    {
        var ticket = JobInput.ReadTicket(message, out var problem);
        var record = ticket is null ? null : _jobs.Submit(room, self, ticket, out problem);
        if (record is null)
        {
            Send(peer, SignalingJson.CodedError(JobQueueMessages.TicketRejected, problem, JobQueueMessages.Submit));
            return;
        }
        Send(peer, new JsonObject { ["type"] = JobQueueMessages.Ticket, ["job_id"] = record.JobId, ["position"] = record.Position, ["record"] = record.ToJson() });
        // After the answer, so the submitter knows its ticket before it may hear that a worker took it.
        _jobs.AssignWaiting(room);
    }

    private void ListJobs(PeerSocket peer, string room, JsonObject message)
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
        var jobs = jobId is not null && !JobInput.IsJobId(jobId) ? [] : _jobs.List(room, jobId, normalized);
        var list = new JsonArray();
        foreach (var job in jobs) list.Add(job.ToJson());
        Send(peer, new JsonObject { ["type"] = JobQueueMessages.List, ["jobs"] = list });
    }

    private void CancelJob(PeerSocket peer, string self, string room, JsonObject message)
    {
        var jobId = message.GetString("job_id");
        JobRecord? record = null;
        string? worker = null;
        var outcome = JobInput.IsJobId(jobId) ? _jobs.Cancel(room, jobId!, self, out record, out worker) : CancelOutcome.NotFound;
        if (outcome == CancelOutcome.NotFound)
        {
            Send(peer, SignalingJson.CodedError(JobQueueMessages.JobNotFound, $"No job {Truncate(jobId ?? "")} in this room.", JobQueueMessages.Cancel));
            return;
        }
        if (outcome == CancelOutcome.ForwardToWorker)
        {
            var forwarded = new JsonObject
            {
                ["type"] = JobQueueMessages.Cancel, ["job_id"] = jobId, ["keep_checkpoint"] = message.GetBool("keep_checkpoint"), ["sender"] = self,
            };
            var delivered = worker is not null && _peers.Get(worker) is { } target && target.RoomId == room && target.Link.TrySendUtf8(SignalingJson.ToUtf8(forwarded));
            _log.Write(LogLevel.Information, Component, $"Cancel of job {jobId} by {self} " + (delivered ? $"forwarded to worker {worker}" : $"not delivered: worker {worker} is not connected"));
        }
        Send(peer, new JsonObject { ["type"] = JobQueueMessages.CancelAccepted, ["job_id"] = jobId, ["record"] = record!.ToJson() });
    }

    /// <summary>No answer on success (workers report fire-and-forget); a refusal is logged, and answered only when the message itself is malformed.</summary>
    private void ReportJob(PeerSocket peer, string self, string room, JsonObject message)
    {
        if (peer.Role != WorkerRole)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "Only workers report jobs.", JobQueueMessages.Update));
            return;
        }
        if (JobInput.ReadWorkerReport(message["record"]) is not { } report)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "job_update needs a 'record' with a job_id and a state other than Queued.", JobQueueMessages.Update));
            return;
        }
        if (_jobs.WorkerReport(room, self, report) is { } ignored)
            _log.Write(LogLevel.Debug, Component, $"Ignored a job_update from {self} for {report.JobId}: {ignored}");
    }
}
