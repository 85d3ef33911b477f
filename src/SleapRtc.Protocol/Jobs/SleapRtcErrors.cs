namespace SleapRtc.Protocol.Jobs;

/// <summary>What kind of failure an error is; the cmdlet layer maps it to a PowerShell ErrorCategory.</summary>
public enum SleapRtcErrorKind
{
    InvalidArgument,
    ObjectNotFound,
    AuthenticationError,
    ResourceBusy,
    ResourceUnavailable,
    ConnectionError,
    OperationTimeout,
    InvalidData,
    OperationStopped,
    InvalidResult,
}

/// <summary>
/// Base of every error the worker and client libraries raise on purpose. <see cref="ErrorId"/> is stable
/// (it becomes the FullyQualifiedErrorId); messages say what happened and what to check, never a token.
/// </summary>
public class SleapRtcException : Exception
{
    public SleapRtcException(string errorId, SleapRtcErrorKind kind, string message, string recommendedAction, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Kind = kind;
        RecommendedAction = recommendedAction;
    }

    public string ErrorId { get; }
    public SleapRtcErrorKind Kind { get; }
    public string RecommendedAction { get; }
}

/// <summary>The worker rejected the offer with the classic worker_busy error.</summary>
public sealed class WorkerBusyException : SleapRtcException
{
    public WorkerBusyException(string workerId, string currentStatus, string workerMessage)
        : base("WorkerBusy", SleapRtcErrorKind.ResourceBusy,
            $"Worker {workerId} rejected the connection: {workerMessage} (worker status: {currentStatus}).",
            "Use room discovery (Get-SleapWorker -RoomId ... or Submit-SleapTraining -AutoSelect) to find an available worker.")
    {
        WorkerId = workerId;
        CurrentStatus = currentStatus;
        WorkerMessage = workerMessage;
    }

    public string WorkerId { get; }
    public string CurrentStatus { get; }
    public string WorkerMessage { get; }
}

public sealed class InvalidRoomCredentialsException : SleapRtcException
{
    public InvalidRoomCredentialsException(string roomId, string serverReason)
        : base("InvalidRoomCredentials", SleapRtcErrorKind.AuthenticationError,
            $"Invalid room credentials for room '{roomId}': the server answered '{serverReason}'.",
            "Check the room id and token (or the session string) printed by Start-SleapWorker, and that the room has not expired.")
    {
        RoomId = roomId;
    }

    public string RoomId { get; }
}

public sealed class NoWorkersAvailableException : SleapRtcException
{
    public NoWorkersAvailableException(string roomId, string detail)
        : base("NoWorkersAvailable", SleapRtcErrorKind.ResourceUnavailable,
            $"No available workers found in room '{roomId}'{detail}.",
            "Ensure workers are running in this room (Start-SleapWorker -RoomId ...) and have status 'available'; lower -MinGpuMemoryMB if you set it.")
    {
        RoomId = roomId;
    }

    public string RoomId { get; }
}

public sealed class WorkerNotFoundException : SleapRtcException
{
    public WorkerNotFoundException(string workerId, string roomId)
        : base("WorkerNotFound", SleapRtcErrorKind.ObjectNotFound,
            $"Worker '{workerId}' is not in room '{roomId}' (or does not match the filters).",
            "List the room's workers with Get-SleapWorker -Status * and check the id.")
    {
        WorkerId = workerId;
    }

    public string WorkerId { get; }
}

public sealed class PackageNotFoundException : SleapRtcException
{
    public PackageNotFoundException(string path)
        : base("PackageNotFound", SleapRtcErrorKind.ObjectNotFound,
            $"The training package '{path}' does not exist.",
            "Export a training package (.zip) from SLEAP and pass its path to -PackagePath.")
    {
        PackagePath = path;
    }

    public string PackagePath { get; }
}

public sealed class MissingCredentialsException : SleapRtcException
{
    public MissingCredentialsException(string what)
        : base("MissingRoomCredentials", SleapRtcErrorKind.InvalidArgument,
            $"No room credentials: {what}.",
            "Pass -SessionString, or -RoomId with -Token (or a room saved by New-SleapRoom/Start-SleapWorker), or set SLEAP_RTC_ROOM_ID and SLEAP_RTC_ROOM_TOKEN.")
    {
    }
}

public sealed class SignalingUnavailableException : SleapRtcException
{
    public SignalingUnavailableException(string server, string detail, Exception? inner = null)
        : base("SignalingServerUnavailable", SleapRtcErrorKind.ConnectionError,
            $"Cannot reach the signaling server {server}: {detail}.",
            "Check the server URL (-Server or SLEAP_RTC_SIGNALING_URL) and that the server is running.", inner)
    {
    }
}

/// <summary>The worker stopped answering: peer connection failed, channel closed or silent.</summary>
public sealed class WorkerLostException : SleapRtcException
{
    public WorkerLostException(string workerId, string phase, string detail)
        : base("WorkerLost", SleapRtcErrorKind.ConnectionError,
            $"Lost the connection to worker {workerId} during {phase}: {detail}.",
            "The worker may have stopped or lost its network; submit again (with -AutoSelect another worker is chosen).")
    {
        WorkerId = workerId;
    }

    public string WorkerId { get; }
}

public sealed class WorkerUnreachableException : SleapRtcException
{
    public WorkerUnreachableException(string workerId, string detail)
        : base("WorkerUnreachable", SleapRtcErrorKind.OperationTimeout,
            $"Could not connect to worker {workerId}: {detail}.",
            "Check that the worker is still running and that both machines can reach each other (same LAN or VPN).")
    {
        WorkerId = workerId;
    }

    public string WorkerId { get; }
}

/// <summary>The worker could not run the job (bad package, checksum mismatch, no trainer, ...).</summary>
public sealed class JobFailedException : SleapRtcException
{
    public JobFailedException(string workerId, string code, string detail)
        : base("TrainingJobFailed", code == JobErrorCodes.ChecksumMismatch ? SleapRtcErrorKind.InvalidData : SleapRtcErrorKind.InvalidResult,
            $"Worker {workerId} could not run the job ({code}): {detail}",
            "Read the worker's message above; fix the package and submit again.")
    {
        WorkerId = workerId;
        Code = code;
    }

    public string WorkerId { get; }
    public string Code { get; }
}

public sealed class SelectionTimeoutException : SleapRtcException
{
    public SelectionTimeoutException(TimeSpan timeout)
        : base("WorkerSelectionTimeout", SleapRtcErrorKind.OperationTimeout,
            $"No worker was chosen within {timeout.TotalMinutes:0.#} minutes.",
            "Run the command again and answer the prompt, or use -AutoSelect / -WorkerId for unattended runs.")
    {
    }
}

public sealed class ServerNotSpecifiedException : SleapRtcException
{
    public ServerNotSpecifiedException()
        : base("SignalingServerNotSpecified", SleapRtcErrorKind.InvalidArgument,
            "No signaling server was given, saved for this room, or set in the environment.",
            "Pass -Server (e.g. ws://host:8080), use a session string that carries one, or set SLEAP_RTC_SIGNALING_URL.")
    {
    }
}

/// <summary>The worker could not run an inference (no track script, tracker failed, no predictions, ...).</summary>
public sealed class InferenceFailedException : SleapRtcException
{
    public const string Id = "InferenceJobFailed";

    public InferenceFailedException(string workerId, string code, string detail)
        : base(Id, code == JobErrorCodes.ChecksumMismatch ? SleapRtcErrorKind.InvalidData : SleapRtcErrorKind.InvalidResult,
            $"Inference on worker {workerId} failed ({code}): {detail}",
            "Read the tracker's output (-Verbose or -ShowLog); check the model folders and the data file, then submit again.")
    {
        WorkerId = workerId;
        Code = code;
    }

    public string WorkerId { get; }
    public string Code { get; }
}
