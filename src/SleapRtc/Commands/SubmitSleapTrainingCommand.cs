using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Jobs;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Sends a training package to a worker, shows progress and the worker's log, and returns the trained models.</summary>
[Cmdlet(VerbsLifecycle.Submit, "SleapTraining")]
[OutputType(typeof(TrainingResult))]
[OutputType(typeof(Job))]
public sealed class SubmitSleapTrainingCommand : SleapCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(PackagePathCompleter))]
    public string PackagePath { get; set; } = "";

    /// <summary>A worker from Get-SleapWorker or Select-SleapWorker; carries its room, token and server.</summary>
    [Parameter(ValueFromPipeline = true)]
    public WorkerInfo? Worker { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? SessionString { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string? RoomId { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Token { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Server { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(WorkerIdCompleter))]
    public string? WorkerId { get; set; }

    [Parameter]
    public SwitchParameter AutoSelect { get; set; }

    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public long MinGpuMemoryMB { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutputPath { get; set; }

    /// <summary>Worker log lines go to the Information stream (shown) instead of Verbose.</summary>
    [Parameter]
    public SwitchParameter ShowLog { get; set; }

    [Parameter]
    public SwitchParameter AsJob { get; set; }

    protected override void ProcessRecord()
    {
        var packagePath = GetUnresolvedProviderPathFromPSPath(PackagePath);
        if (!File.Exists(packagePath))
        {
            var missing = new PackageNotFoundException(PackagePath);
            ThrowTerminatingError(SleapErrors.FromLibrary(missing, PackagePath));
            return;
        }
        var outputPath = GetUnresolvedProviderPathFromPSPath(OutputPath ?? ".");
        var interactive = HostWorkerChooser.IsInteractive(Host) && !AsJob;
        var plan = new SubmissionPlan(packagePath, outputPath, Worker, SessionString, RoomId, Token, EffectiveServer(Server, Worker, SessionString, RoomId),
            WorkerId, AutoSelect, MinGpuMemoryMB, ShowLog);

        if (AsJob)
        {
            WriteObject(TrainingJob.Start(this, plan, MyInvocation.Line));
            return;
        }
        try
        {
            WriteObject(RunOnBackground((queue, ct) => plan.RunAsync(new QueueSubmissionSink(queue), interactive ? new HostWorkerChooser(queue) : null, ct)));
        }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, Worker?.PeerId ?? WorkerId ?? RoomId));
        }
        catch (FormatException ex)
        {
            ThrowTerminatingError(SleapErrors.InvalidSessionString(SessionString ?? "", ex));
        }
    }

    /// <summary>-Server, else whatever the credentials name, else (when nothing names one) a server of this session.</summary>
    internal static string? EffectiveServer(string? server, WorkerInfo? worker, string? sessionString, string? roomId)
    {
        if (!string.IsNullOrWhiteSpace(server)) return server;
        if (!string.IsNullOrEmpty(worker?.Server) || !string.IsNullOrEmpty(sessionString)) return null;
        if (CredentialResolver.ServerFromEnvironment() is not null) return null;
        var room = roomId ?? Environment.GetEnvironmentVariable(CredentialResolver.RoomIdVariable);
        if (!string.IsNullOrEmpty(room) && ModuleData.Credentials().Get(room!)?.Server is { Length: > 0 }) return null;
        return RunningServer.OfThisSession().FirstOrDefault()?.LocalUrl;
    }
}
