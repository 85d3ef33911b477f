using System.Management.Automation;
using SleapRtc.Client.Jobs;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>
/// Runs "sleap-nn track" on a worker: sends the data file and model folders as a classic track package, shows
/// progress (frames done of total, frames/s, ETA) and the tracker's output, and returns the predictions.
/// The worker is chosen as for Submit-SleapTraining; a TrainingResult piped in supplies the models.
/// </summary>
[Cmdlet(VerbsLifecycle.Submit, "SleapInference", DefaultParameterSetName = ModelsSet, HelpUri = ModuleLinks.Docs + "Submit-SleapInference.md")]
[OutputType(typeof(InferenceResult))]
[OutputType(typeof(Job))]
public sealed class SubmitSleapInferenceCommand : SleapCmdlet
{
    private const string ModelsSet = "Models";
    private const string SpaceSet = "Space";

    /// <summary>Trained model folders; a TrainingResult's ModelPaths bind here by property name.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = ModelsSet)]
    [Alias("ModelPaths")]
    [ValidateNotNullOrEmpty]
    public string[] ModelPath { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string DataPath { get; set; } = "";

    /// <summary>An inference space of the room (Get-SleapSpace): it keeps the models, the request sends only the data.</summary>
    [Parameter(Mandatory = true, ParameterSetName = SpaceSet)]
    [ValidateNotNullOrEmpty]
    public string? Space { get; set; }

    /// <summary>A worker from Get-SleapWorker or Select-SleapWorker; carries its room, token and server.</summary>
    [Parameter(ValueFromPipeline = true, ParameterSetName = ModelsSet)]
    public WorkerInfo? Worker { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? SessionString { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string? RoomId { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Token { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ServerList]
    public string? Server { get; set; }

    [Parameter(ParameterSetName = ModelsSet)]
    [ArgumentCompleter(typeof(WorkerIdCompleter))]
    public string? WorkerId { get; set; }

    [Parameter(ParameterSetName = ModelsSet)]
    public SwitchParameter AutoSelect { get; set; }

    [Parameter(ParameterSetName = ModelsSet)]
    [ValidateRange(0, long.MaxValue)]
    public long MinGpuMemoryMB { get; set; }

    /// <summary>The folder the predictions file is written to; default the current folder.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutputPath { get; set; }

    /// <summary>Frame ranges in sleap-nn's syntax, for example "0-100,200-300".</summary>
    [Parameter]
    [ValidatePattern(@"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$")]
    public string? Frames { get; set; }

    [Parameter]
    public SwitchParameter OnlySuggestedFrames { get; set; }

    [Parameter]
    [ValidateRange(1, 4096)]
    public int BatchSize { get; set; }

    [Parameter]
    [ValidateRange(0.0, 1.0)]
    public double PeakThreshold { get; set; }

    /// <summary>Tracker output goes to the Information stream (shown) instead of Verbose.</summary>
    [Parameter]
    public SwitchParameter ShowLog { get; set; }

    [Parameter]
    public SwitchParameter AsJob { get; set; }

    /// <summary>Wait in the room's queue for a matching worker instead of needing a free one now (not with -Space, which queues on its own worker).</summary>
    [Parameter(ParameterSetName = ModelsSet)]
    public SwitchParameter Queue { get; set; }

    /// <summary>-Queue only: higher runs first; first come, first served within a priority.</summary>
    [Parameter(ParameterSetName = ModelsSet)]
    [ValidateRange(-100, 100)]
    public int Priority { get; set; }

    /// <summary>-Queue only: tags the worker must carry (Start-SleapWorker -Tag).</summary>
    [Parameter(ParameterSetName = ModelsSet)]
    [ValidateNotNullOrEmpty]
    [ValidateCount(1, 16)]
    public string[] Tag { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord()
    {
        var dataPath = GetUnresolvedProviderPathFromPSPath(DataPath);
        var outputPath = GetUnresolvedProviderPathFromPSPath(OutputPath ?? ".");
        var canPrompt = HostWorkerChooser.IsInteractive(Host);
        var interactive = canPrompt && !AsJob;
        InferencePlan plan;
        try
        {
            if (!Queue && (MyInvocation.BoundParameters.ContainsKey(nameof(Priority)) || MyInvocation.BoundParameters.ContainsKey(nameof(Tag))))
                throw SubmitSleapTrainingCommand.QueueOptionWithoutQueue();
            var room = RoomTarget.ForSubmission(Worker, RoomId, Token, Server, SessionString);
            // A queued request waits for the server's choice; only a direct one needs someone to pick the worker.
            if (!Queue && !canPrompt && Space is null && Worker is null && WorkerId is null && room.WorkerPeerId is null && !AutoSelect)
                throw HostWorkerChooser.NotInteractive();
            var target = new SubmissionPlan("", outputPath, room, Worker, WorkerId, AutoSelect, MinGpuMemoryMB, ShowLog)
            {
                Queue = Queue ? new QueueOptions { Priority = Priority, Tags = Tag } : null,
            };
            plan = new InferencePlan(target, new InferenceRequest
            {
                DataPath = dataPath,
                ModelPaths = ModelPath.Select(GetUnresolvedProviderPathFromPSPath).ToArray(),
                Frames = Frames,
                OnlySuggestedFrames = OnlySuggestedFrames,
                BatchSize = MyInvocation.BoundParameters.ContainsKey(nameof(BatchSize)) ? BatchSize : null,
                PeakThreshold = MyInvocation.BoundParameters.ContainsKey(nameof(PeakThreshold)) ? PeakThreshold : null,
                Space = Space,
            });
        }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, Worker?.PeerId ?? WorkerId ?? RoomId ?? (object)dataPath));
            return;
        }
        catch (FormatException ex)
        {
            ThrowTerminatingError(SleapErrors.InvalidSessionString(SessionString ?? "", ex));
            return;
        }

        if (AsJob)
        {
            WriteObject(TrainingJob.Start(this, MyInvocation.Line, InferencePlan.JobKind, Worker?.PeerId ?? WorkerId ?? RoomId, dataPath,
                (sink, ct) => plan.RunAsync(sink, chooser: null, ct)));
            return;
        }
        try
        {
            RunOnBackground((queue, ct) => plan.RunAsync(new QueueSubmissionSink(queue), interactive ? new HostWorkerChooser(queue, ct) : null, ct))
                .Deliver(WriteObject, WriteError);
        }
        catch (SleapRtcException ex)
        {
            // Not terminating: with several inputs on the pipeline the others still run.
            WriteError(SleapErrors.FromLibrary(ex, Worker?.PeerId ?? WorkerId ?? RoomId ?? (object)dataPath));
        }
    }
}
