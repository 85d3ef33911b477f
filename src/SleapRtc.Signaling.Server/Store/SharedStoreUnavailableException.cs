namespace SleapRtc.Signaling.Store;

/// <summary>
/// The store several server instances share (Redis) could not be reached or did not answer in time. Callers turn it into
/// a clear error for the peer (code SERVER_UNAVAILABLE) instead of a hang; the instance reconnects by itself.
/// </summary>
public sealed class SharedStoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner)
{
    public const string DefaultMessage = "The server's shared store (Redis) is unreachable; try again in a few seconds.";
}
