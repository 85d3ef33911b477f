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

/// <summary>
/// The worker rejected the offer with the classic worker_busy error. The worker's own wording (which names the Python
/// tool's flags) stays in <see cref="WorkerMessage"/>; the message speaks PowerShell.
/// </summary>
public sealed class WorkerBusyException : SleapRtcException
{
    public WorkerBusyException(string workerId, string roomId, string currentStatus, string workerMessage)
        : base("WorkerBusy", SleapRtcErrorKind.ResourceBusy,
            $"Worker {workerId} in room '{roomId}' is {currentStatus} and refused the connection.",
            $"Discover the room's other workers with Get-SleapWorker -RoomId {roomId}, or let Submit-SleapTraining -AutoSelect pick a free one.")
    {
        WorkerId = workerId;
        RoomId = roomId;
        CurrentStatus = currentStatus;
        WorkerMessage = workerMessage;
    }

    public string WorkerId { get; }
    public string RoomId { get; }
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

/// <summary>No worker can take the job: the room is empty (or none matches the filters), or every candidate is busy.</summary>
public sealed class NoWorkersAvailableException : SleapRtcException
{
    private NoWorkersAvailableException(string roomId, string message, string recommendedAction)
        : base("NoWorkersAvailable", SleapRtcErrorKind.ResourceUnavailable, message, recommendedAction)
    {
        RoomId = roomId;
    }

    public string RoomId { get; }

    /// <summary>Nobody in the room is available (or matches <paramref name="minGpuMemoryMB"/>).</summary>
    public static NoWorkersAvailableException EmptyRoom(string roomId, long minGpuMemoryMB = 0) => new(roomId,
        minGpuMemoryMB > 0
            ? $"No available workers found in room '{roomId}' with at least {minGpuMemoryMB} MB of GPU memory."
            : $"No available workers found in room '{roomId}'.",
        minGpuMemoryMB > 0
            ? $"Lower -MinGpuMemoryMB, or list every worker of the room with Get-SleapWorker -RoomId {roomId} -Status *."
            : $"Ensure workers are running in this room (Start-SleapWorker -RoomId {roomId}) and have status 'available'.");

    /// <summary>Workers exist, but each one tried was busy or reserved.</summary>
    public static NoWorkersAvailableException AllBusy(string roomId, int candidates) => new(roomId,
        $"All {candidates} matching worker(s) in room '{roomId}' are busy or reserved.",
        $"Wait for a job to finish and submit again; Get-SleapWorker -RoomId {roomId} -Status * shows what each worker is doing.");
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

/// <summary>The package is not something a worker can train: not a zip, or no train script inside.</summary>
public sealed class InvalidTrainingPackageException : SleapRtcException
{
    public InvalidTrainingPackageException(string path, string detail, Exception? inner = null)
        : base("InvalidTrainingPackage", SleapRtcErrorKind.InvalidData,
            $"The training package '{path}' cannot be trained: {detail}.",
            "Export the training package from SLEAP (a .zip with train-script.sh, the configs and the labels) and pass its path to -PackagePath.", inner)
    {
        PackagePath = path;
    }

    public string PackagePath { get; }
}

/// <summary>The models could not be written where the user asked.</summary>
public sealed class OutputPathNotWritableException : SleapRtcException
{
    public OutputPathNotWritableException(string path, string detail, Exception? inner = null)
        : base("OutputPathNotWritable", SleapRtcErrorKind.InvalidArgument,
            $"The output path '{path}' cannot hold the trained models: {detail}.",
            "Pass an -OutputPath in a folder you can write to (it is created if missing).", inner)
    {
        OutputPath = path;
    }

    public string OutputPath { get; }
}

/// <summary>The room does not exist on the server (never created, deleted, or expired).</summary>
public sealed class RoomNotFoundException : SleapRtcException
{
    public RoomNotFoundException(string roomId, string server)
        : base("RoomNotFound", SleapRtcErrorKind.ObjectNotFound,
            $"Room '{roomId}' does not exist on {server} (it may have expired).",
            "Create a new room with New-SleapRoom if you need one.")
    {
        RoomId = roomId;
    }

    public string RoomId { get; }
}

/// <summary>A room request (create, delete) failed for a reason other than the credentials.</summary>
public sealed class RoomRequestFailedException : SleapRtcException
{
    public RoomRequestFailedException(string errorId, string what, string server, string detail, Exception? inner = null)
        : base(errorId, SleapRtcErrorKind.ConnectionError, $"Could not {what} on {server}: {detail}",
            "Check that the signaling server runs and is reachable (-Server or SLEAP_RTC_SIGNALING_URL).", inner)
    {
    }
}

/// <summary>A -Server value that is not a signaling server address.</summary>
public sealed class InvalidServerAddressException : SleapRtcException
{
    public InvalidServerAddressException(string server, string detail, Exception? inner = null)
        : base("InvalidSignalingServerAddress", SleapRtcErrorKind.InvalidArgument, detail,
            "Use ws://host:port, http://host:port or host:port for -Server.", inner)
    {
        Server = server;
    }

    public string Server { get; }
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
    /// <param name="inner">The transport's own failure (ICE, DTLS, SCTP) when the connection failed rather than timed out.</param>
    public WorkerUnreachableException(string workerId, string detail, Exception? inner = null)
        : base("WorkerUnreachable", inner is null ? SleapRtcErrorKind.OperationTimeout : SleapRtcErrorKind.ConnectionError,
            $"Could not connect to worker {workerId}: {detail}.",
            "Check that the worker is still running and that both machines can reach each other (same LAN or VPN).", inner)
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
