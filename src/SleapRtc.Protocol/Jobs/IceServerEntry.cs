namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// One entry of registered_auth's "ice_servers" as it is on the wire (the RTCIceServer form): URLs sharing one
/// username and credential. The layers that build peer connections turn it into the transport's own ICE server type.
/// </summary>
public sealed record IceServerEntry(IReadOnlyList<string> Urls, string? Username, string? Credential)
{
    /// <summary>The URLs and whether credentials are present; the credential itself is never part of the text.</summary>
    public override string ToString() => string.Join(",", Urls) + (Username is null ? "" : $" (user {Username})");
}
