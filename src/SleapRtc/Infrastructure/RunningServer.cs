using SleapRtc.Signaling.Server;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>A signaling server started by Start-SleapSignalingServer in this session.</summary>
internal sealed class RunningServer : IRunningService
{
    private readonly SignalingServerHost _host;

    public RunningServer(SignalingServerHost host) => _host = host;

    public Guid InstanceId => _host.InstanceId;
    public int Port => _host.Port;
    /// <summary>The URL callers on this machine use (loopback when listening on all interfaces).</summary>
    public string LocalUrl => _host.LocalUrl;
    /// <summary>The URL other machines use (the LAN address when listening on all interfaces).</summary>
    public string Url => _host.Url;
    public Task Completion => _host.Completion;

    public SignalingServer ToModel() => _host.ToModel();

    public Task StopAsync() => _host.StopAsync();

    /// <summary>Drains, then stops: peers move to other instances within the timeout (null: the server's own setting).</summary>
    public Task DrainAsync(TimeSpan? timeout, CancellationToken ct) => _host.DrainAsync(timeout, ct);

    public TimeSpan DrainTimeout => _host.DrainTimeout;

    /// <summary>The servers of the calling session, oldest first.</summary>
    public static IReadOnlyList<RunningServer> OfThisSession() => SessionRegistry.Current.Services<RunningServer>();
}
