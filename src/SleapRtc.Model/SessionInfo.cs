namespace SleapRtc;

/// <summary>The decoded content of a session string (ConvertFrom-SleapSessionString output).</summary>
public sealed class SessionInfo
{
    public string RoomId { get; set; } = "";
    public string Token { get; set; } = "";
    public string PeerId { get; set; } = "";
    public string? Server { get; set; }
    /// <summary>The SleapRtc extension version of the worker that printed the string (0: a classic worker or a string
    /// made by hand). From 2 on, clients always authenticate the channel to that worker.</summary>
    public int ExtensionVersion { get; set; }

    public override string ToString() => $"{RoomId}/{PeerId}";
}
