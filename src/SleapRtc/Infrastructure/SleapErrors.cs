using System.Management.Automation;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>Stable FullyQualifiedErrorIds: scripts and tests match on these, so they never change meaning.</summary>
public static class ErrorIds
{
    public const string InvalidSessionString = "InvalidSessionString";
    public const string InvalidRoomCredentials = "InvalidRoomCredentials";
    public const string MissingRoomCredentials = "MissingRoomCredentials";
    public const string MissingServer = "MissingSignalingServer";
    public const string ServerUnreachable = "SignalingServerUnreachable";
    public const string ServerStartFailed = "SignalingServerStartFailed";
    public const string ServerNotFound = "SignalingServerNotFound";
    public const string RoomCreateFailed = "RoomCreateFailed";
    public const string RoomRemoveFailed = "RoomRemoveFailed";
    public const string NoWorkersAvailable = "NoWorkersAvailable";
    public const string WorkerBusy = "WorkerBusy";
    public const string WorkerNotFound = "WorkerNotFound";
    public const string WorkerStartFailed = "WorkerStartFailed";
    public const string PackageNotFound = "PackageNotFound";
    public const string TrainingFailed = "TrainingFailed";
    public const string NoInteractiveHost = "NoInteractiveHost";
    public const string SelectionTimedOut = "SelectionTimedOut";
    public const string OperationTimedOut = "OperationTimedOut";
}

/// <summary>Builds ErrorRecords that say what went wrong and what to do next, without stack traces or secrets.</summary>
public static class SleapErrors
{
    public static ErrorRecord Create(
        string errorId,
        ErrorCategory category,
        object? target,
        string message,
        string recommendedAction,
        Exception? inner = null)
    {
        var exception = inner is null ? new SleapRtcException(message) : new SleapRtcException(message, inner);
        return new ErrorRecord(exception, errorId, category, target)
        {
            ErrorDetails = new ErrorDetails(message) { RecommendedAction = recommendedAction },
        };
    }

    public static ErrorRecord InvalidSessionString(string value, FormatException reason) => Create(
        ErrorIds.InvalidSessionString, ErrorCategory.InvalidArgument, value, reason.Message,
        "Copy the whole 'sleap-session:...' line that Start-SleapWorker printed, or pass -RoomId, -Token and -Server instead.",
        reason);

    public static ErrorRecord MissingRoomCredentials(string? roomId) => Create(
        ErrorIds.MissingRoomCredentials, ErrorCategory.InvalidArgument, roomId,
        roomId is null
            ? "No room was given: pass -RoomId and -Token, -SessionString, or set SLEAP_RTC_ROOM_ID and SLEAP_RTC_ROOM_TOKEN."
            : $"No token is known for room '{roomId}': it was not given and is not among the saved rooms.",
        "Pass -Token (and -Server), pass the worker's -SessionString, or create the room on this machine with New-SleapRoom so its credentials are saved.");

    public static ErrorRecord MissingServer() => Create(
        ErrorIds.MissingServer, ErrorCategory.InvalidArgument, null,
        "No signaling server is known: none was given, none is saved for the room and SLEAP_RTC_SIGNALING_URL is not set.",
        "Pass -Server (for example http://lab-server:8080), or set SLEAP_RTC_SIGNALING_URL.");
}

/// <summary>The exception type behind SleapRtc error records (never carries tokens).</summary>
public sealed class SleapRtcException : Exception
{
    public SleapRtcException(string message) : base(message) { }
    public SleapRtcException(string message, Exception inner) : base(message, inner) { }
}
