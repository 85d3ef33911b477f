namespace SleapRtc;

/// <summary>The decoded content of a session string (ConvertFrom-SleapSessionString output).</summary>
public sealed class SessionInfo
{
    public string RoomId { get; set; } = "";
    public string Token { get; set; } = "";
    public string PeerId { get; set; } = "";
    public string? Server { get; set; }

    public override string ToString() => $"{RoomId}/{PeerId}";
}
