using System.Management.Automation;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Stable FullyQualifiedErrorIds raised by the cmdlet layer itself (the libraries' ids come with their
/// <see cref="SleapRtcException"/>). Scripts and tests match on these, so they never change meaning.
/// </summary>
internal static class ErrorIds
{
    public const string InvalidSessionString = "InvalidSessionString";
    public const string MissingServer = "MissingSignalingServer";
    public const string ServerStartFailed = "SignalingServerStartFailed";
    public const string InvalidTurnConfiguration = "InvalidTurnConfiguration";
    public const string OperationTimedOut = "OperationTimedOut";
    public const string ServerNotFound = "SignalingServerNotFound";
    public const string WorkerNotRunningHere = "WorkerNotRunningHere";
    public const string InvalidGpuId = "InvalidGpuId";
    public const string DataRootNotFound = "DataRootNotFound";
    public const string InvalidResultRetention = "InvalidResultRetention";
    public const string InvalidPartialUploadRetention = "InvalidPartialUploadRetention";
    public const string ConflictingSelection = "ConflictingSelection";
    public const string InvalidExpiresIn = "InvalidExpiresIn";
}

/// <summary>Builds ErrorRecords that say what went wrong and what to do next, without stack traces or secrets.</summary>
internal static class SleapErrors
{
    public static ErrorRecord Create(string errorId, ErrorCategory category, object? target, string message,
        string recommendedAction, Exception? inner = null)
    {
        var exception = new SleapRtcException(errorId, KindOf(category), message, recommendedAction, inner);
        return FromLibrary(exception, target);
    }

    /// <summary>An error the worker/client/signaling libraries raised on purpose: its id, kind and advice carry over.</summary>
    public static ErrorRecord FromLibrary(SleapRtcException exception, object? target) =>
        new(exception, exception.ErrorId, CategoryOf(exception.Kind), target)
        {
            ErrorDetails = new ErrorDetails(exception.Message) { RecommendedAction = exception.RecommendedAction },
        };

    public static ErrorRecord InvalidSessionString(string value, FormatException reason) =>
        FromLibrary(InvalidSessionStringException(reason), value);

    public static SleapRtcException InvalidSessionStringException(FormatException reason) => new(
        ErrorIds.InvalidSessionString, SleapRtcErrorKind.InvalidArgument, reason.Message,
        "Copy the whole 'sleap-session:...' line that Start-SleapWorker printed, or pass -RoomId, -Token and -Server instead.",
        reason);

    public static ErrorRecord MissingServer() => FromLibrary(MissingServerException(), null);

    public static SleapRtcException MissingServerException() => new(
        ErrorIds.MissingServer, SleapRtcErrorKind.InvalidArgument,
        "No signaling server is known: none was given, none is saved for the room, SLEAP_RTC_SIGNALING_URL is not set and no server runs in this session.",
        "Pass -Server (for example ws://lab-server:8080), set SLEAP_RTC_SIGNALING_URL, or start one with Start-SleapSignalingServer.");

    public static ErrorRecord InvalidServerAddress(string server, Exception reason) =>
        FromLibrary(new InvalidServerAddressException(server, reason.Message, reason), server);

    public static ErrorCategory CategoryOf(SleapRtcErrorKind kind) => kind switch
    {
        SleapRtcErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        SleapRtcErrorKind.ObjectNotFound => ErrorCategory.ObjectNotFound,
        SleapRtcErrorKind.AuthenticationError => ErrorCategory.AuthenticationError,
        SleapRtcErrorKind.ResourceBusy => ErrorCategory.ResourceBusy,
        SleapRtcErrorKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        SleapRtcErrorKind.ConnectionError => ErrorCategory.ConnectionError,
        SleapRtcErrorKind.OperationTimeout => ErrorCategory.OperationTimeout,
        SleapRtcErrorKind.InvalidData => ErrorCategory.InvalidData,
        SleapRtcErrorKind.OperationStopped => ErrorCategory.OperationStopped,
        SleapRtcErrorKind.InvalidResult => ErrorCategory.InvalidResult,
        _ => ErrorCategory.NotSpecified,
    };

    private static SleapRtcErrorKind KindOf(ErrorCategory category) => category switch
    {
        ErrorCategory.InvalidArgument => SleapRtcErrorKind.InvalidArgument,
        ErrorCategory.ObjectNotFound => SleapRtcErrorKind.ObjectNotFound,
        ErrorCategory.AuthenticationError => SleapRtcErrorKind.AuthenticationError,
        ErrorCategory.ResourceBusy => SleapRtcErrorKind.ResourceBusy,
        ErrorCategory.ResourceUnavailable => SleapRtcErrorKind.ResourceUnavailable,
        ErrorCategory.ConnectionError => SleapRtcErrorKind.ConnectionError,
        ErrorCategory.OperationTimeout => SleapRtcErrorKind.OperationTimeout,
        ErrorCategory.InvalidData => SleapRtcErrorKind.InvalidData,
        ErrorCategory.OperationStopped => SleapRtcErrorKind.OperationStopped,
        _ => SleapRtcErrorKind.InvalidResult,
    };
}
