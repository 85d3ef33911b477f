namespace SleapRtc.Protocol.Signaling;

/// <summary>
/// Our signaling extension that keeps a long-connected peer's TURN credentials valid. The credentials in
/// registered_auth's <c>ice_servers</c> expire (coturn's shared-secret scheme puts the expiry in the username), and a
/// worker stays registered for weeks: without renewal every relayed connection it makes after the expiry is refused.
/// A peer that takes renewals lists <see cref="ClientFeature"/> under <see cref="DrainingMessages.ClientExtensionsKey"/>
/// in its <c>register</c> message; before its credentials expire (at about half their lifetime) the server sends it
/// <c>{"type":"ice_servers_renewed","ice_servers":[…]}</c>, the same RTCIceServer list as registered_auth's with fresh
/// credentials, which the peer uses for every connection it makes from then on. Classic peers never get the message
/// (they did not ask for it) and keep the classic behaviour: fresh credentials when they register again.
/// </summary>
public static class IceServerRenewalMessages
{
    public const string ClientFeature = "ice_servers_renewal";

    /// <summary>server → peer: <c>{type, ice_servers}</c>.</summary>
    public const string IceServersRenewed = "ice_servers_renewed";
    /// <summary>Same key and form as registered_auth's.</summary>
    public const string IceServersKey = "ice_servers";
}
