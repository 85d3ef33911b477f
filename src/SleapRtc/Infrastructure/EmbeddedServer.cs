using System.Net.Sockets;
using SleapRtc.Signaling.Server;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>The zero-setup default of Start-SleapWorker: a signaling server inside this session.</summary>
internal static class EmbeddedServer
{
    public const int PreferredPort = 8080;

    /// <summary>
    /// Starts a server reachable from the LAN on port 8080, or on a free port when 8080 is taken, and registers it
    /// with the session so Get-/Stop-SleapSignalingServer and module cleanup see it.
    /// </summary>
    public static async Task<RunningServer> StartAsync(SessionRegistry registry, CancellationToken cancellationToken)
    {
        SignalingServerHost host;
        try
        {
            host = await SignalingServerHost.StartAsync(Options(PreferredPort), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            host = await SignalingServerHost.StartAsync(Options(0), cancellationToken).ConfigureAwait(false);
        }
        var server = new RunningServer(host);
        registry.Add(server);
        return server;
    }

    private static SignalingServerOptions Options(int port)
    {
        var database = ModuleData.DefaultDatabasePath();
        Directory.CreateDirectory(Path.GetDirectoryName(database)!);
        return new SignalingServerOptions { Port = port, ListenAddress = "0.0.0.0", DatabasePath = database };
    }
}
