using System.Management.Automation;
using System.Net.Sockets;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Signaling.Server;
using SleapRtc.Signaling.Store;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Starts the bundled signaling server in this session (background), or runs it until Ctrl+C with -Wait.</summary>
[Cmdlet(VerbsLifecycle.Start, "SleapSignalingServer", HelpUri = ModuleLinks.Docs + "Start-SleapSignalingServer.md")]
[OutputType(typeof(SignalingServer))]
public sealed class StartSleapSignalingServerCommand : SleapCmdlet
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    [Parameter(Position = 0)]
    [ValidateRange(0, 65535)]
    [ArgumentCompleter(typeof(PortCompleter))]
    public int Port { get; set; } = 8080;

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ListenAddress { get; set; } = "0.0.0.0";

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? DatabasePath { get; set; }

    /// <summary>Days finished job records stay on the server (the room job queue, issue 12).</summary>
    [Parameter]
    [ValidateRange(1, 3650)]
    public int JobRetentionDays { get; set; } = 30;

    /// <summary>Finished job records kept per room; the oldest go first.</summary>
    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public int MaxFinishedJobsPerRoom { get; set; } = 10_000;

    /// <summary>Redis shared with other instances (a redis:// URL or host:port); SLEAP_RTC_REDIS_URL when not given.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Redis { get; set; }

    /// <summary>Seconds a drain (Stop-SleapSignalingServer, SIGTERM under -Wait) gives peers to move to another instance.</summary>
    [Parameter]
    [ValidateRange(0, 86400)]
    public int DrainTimeoutSec { get; set; } = 30;

    /// <summary>TURN servers (coturn) handed to every peer with short-lived credentials; needs -TurnSecret.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? TurnUrl { get; set; }

    /// <summary>coturn's static-auth-secret (use-auth-secret); it stays on this server and is never logged.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? TurnSecret { get; set; }

    [Parameter]
    public SwitchParameter Wait { get; set; }

    /// <summary>Where -Redis comes from when the parameter is not given.</summary>
    public const string RedisVariable = "SLEAP_RTC_REDIS_URL";

    protected override void EndProcessing()
    {
        var databasePath = DatabasePath is null or ":memory:" ? DatabasePath ?? ModuleData.DefaultDatabasePath()
            : GetUnresolvedProviderPathFromPSPath(DatabasePath);
        if (databasePath != ":memory:") Directory.CreateDirectory(Path.GetDirectoryName(databasePath)!);

        // -TurnUrl a,b and -TurnUrl "a,b" both name two servers.
        var turnUrls = (TurnUrl ?? Array.Empty<string>()).SelectMany(u => u.Split(',')).Select(u => u.Trim()).Where(u => u.Length > 0).ToArray();
        var redis = Redis ?? (Environment.GetEnvironmentVariable(RedisVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment.Trim() : null);
        var options = new SignalingServerOptions
        {
            Port = Port, ListenAddress = ListenAddress, DatabasePath = databasePath, Redis = redis,
            DrainTimeout = TimeSpan.FromSeconds(DrainTimeoutSec), TurnUrls = turnUrls, TurnSecret = TurnSecret,
        };
        try
        {
            options.ValidateTurn();
        }
        catch (ArgumentException ex)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.InvalidTurnConfiguration, ErrorCategory.InvalidArgument, turnUrls,
                $"The TURN settings are not usable: {ex.Message.Split(new[] { " (Parameter" }, StringSplitOptions.None)[0]}.",
                "Give -TurnUrl turn:host:3478[,turns:host:5349] together with -TurnSecret, the static-auth-secret of coturn's use-auth-secret mode.", ex));
            return;
        }
        options.Jobs.FinishedRetention = TimeSpan.FromDays(JobRetentionDays);
        options.Jobs.MaxFinishedPerRoom = MaxFinishedJobsPerRoom;
        PipelineLogSink? log = null;
        if (Wait)
        {
            log = new PipelineLogSink("server");
            options.Log = log;
        }

        SignalingServerHost host;
        try
        {
            host = RunOnBackground((_, token) => SignalingServerHost.StartAsync(options, token), StartTimeout);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.ServerStartFailed, ErrorCategory.ResourceUnavailable, Port,
                $"Port {Port} on {ListenAddress} is already in use.",
                "Choose another -Port, or -Port 0 to let the system pick a free one.", ex));
            return;
        }
        catch (SharedStoreUnavailableException ex)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.ServerStartFailed, ErrorCategory.ConnectionError, "Redis",
                $"The signaling server could not start: {ex.Message}",
                $"Check -Redis (or {RedisVariable}): a redis:// URL or host:port of a running redis-server this machine can reach.", ex));
            return;
        }
        catch (Exception ex) when (ex is SocketException or ArgumentException or IOException or TimeoutException or InvalidOperationException)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.ServerStartFailed, ErrorCategory.ResourceUnavailable, ListenAddress,
                $"The signaling server could not start: {ex.Message}",
                "Check -ListenAddress (an IP address of this machine), -Port and that -DatabasePath is writable.", ex));
            return;
        }

        var server = new RunningServer(host);
        SessionRegistry.Current.Add(server);
        WriteObject(server.ToModel());
        if (!Wait) return;

        // Service mode: stay in the pipeline, relaying the server's log, until Ctrl+C or the server stops.
        // SIGTERM (a service manager stopping the service) drains: peers move to other instances, then the server stops.
        using var drainOnSigterm = host.DrainOnTerminationSignal();
        try
        {
            RunOnBackground(async (queue, token) =>
            {
                log!.Attach(queue);
                await server.Completion.WaitAsync(token).ConfigureAwait(false);
            });
        }
        finally
        {
            log!.Detach();
            SessionRegistry.Current.Remove(server);
            if (!server.StopAsync().Wait(TimeSpan.FromSeconds(10)))
                WriteWarning($"The server on port {server.Port} did not stop within 10 s.");
        }
    }
}
