using System.Management.Automation;
using System.Text;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// How a finished remote job (a training now, an inference next) reaches the caller: its result object always, and
/// for a job that failed or was cancelled an ErrorRecord as well, so -ErrorAction Stop, try/catch, $? and job states
/// see it. The record's id is "&lt;Kind&gt;JobFailed" or "&lt;Kind&gt;JobCancelled" (scripts match on them), its
/// message carries the trainer's exit code and the worker's last log lines, and its TargetObject is the result.
/// </summary>
/// <param name="Kind">"Training", "Inference": the first word of the error ids.</param>
internal sealed record JobReport(string Kind, object Result, string Status, string JobId, string WorkerId, string? Error, int? ExitCode,
    IReadOnlyList<string> LastLogLines)
{
    public const string Succeeded = "Succeeded";
    public const string Cancelled = "Cancelled";
    private const int LogLinesInMessage = 10;

    public bool IsFailure => !string.Equals(Status, Succeeded, StringComparison.Ordinal);

    public static JobReport Of(TrainingResult result) => new("Training", result, result.Status, result.JobId, result.WorkerId,
        result.Error, result.ExitCode, result.LastLogLines);

    /// <summary>-NoWait: the worker accepted the package and runs the job on its own; nothing has failed.</summary>
    public static JobReport HandedOver(JobInfo job) => new("Training", job, Succeeded, job.JobId, job.WorkerId ?? "", null, null, Array.Empty<string>());

    public static JobReport Of(InferenceResult result) => new("Inference", result, result.Status, result.JobId, result.WorkerId,
        result.Error, null, Array.Empty<string>());

    /// <summary>Writes the result, then the error for a failed or cancelled job (which -ErrorAction Stop turns into a throw).</summary>
    public void Deliver(Action<object> writeObject, Action<ErrorRecord> writeError)
    {
        writeObject(Result);
        if (ToErrorRecord() is { } error) writeError(error);
    }

    /// <summary>Null for a job that succeeded.</summary>
    public ErrorRecord? ToErrorRecord()
    {
        if (!IsFailure) return null;
        var cancelled = string.Equals(Status, Cancelled, StringComparison.Ordinal);
        var exception = new SleapRtcException(
            Kind + (cancelled ? "JobCancelled" : "JobFailed"),
            cancelled ? SleapRtcErrorKind.OperationStopped : SleapRtcErrorKind.InvalidResult,
            Describe(cancelled),
            cancelled
                ? "Submit the job again when you want it to run; the worker is available again."
                : "Read the worker's log above (-ShowLog shows all of it), fix the package or configs and submit again; the result is in the error's TargetObject.");
        return SleapErrors.FromLibrary(exception, Result);
    }

    private string Describe(bool cancelled)
    {
        var text = new StringBuilder();
        var job = string.IsNullOrEmpty(JobId) ? $"{Kind} job" : $"{Kind} job {JobId}";
        var worker = string.IsNullOrEmpty(WorkerId) ? "" : $" on worker {WorkerId}";
        text.Append(job).Append(cancelled ? " was cancelled" : " failed").Append(worker);
        if (!string.IsNullOrEmpty(Error)) text.Append(": ").Append(Error!.TrimEnd('.')).Append('.');
        else text.Append('.');
        if (ExitCode is { } code) text.Append(" The trainer exited with code ").Append(code).Append('.');
        var tail = LastLogLines.Skip(Math.Max(0, LastLogLines.Count - LogLinesInMessage)).ToList();
        if (tail.Count > 0)
        {
            text.Append(" Last lines of the worker's log:");
            foreach (var line in tail) text.Append(Environment.NewLine).Append("  ").Append(line);
        }
        return text.ToString();
    }
}
