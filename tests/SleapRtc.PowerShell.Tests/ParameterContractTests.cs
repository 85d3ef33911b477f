namespace SleapRtc.PowerShell.Tests;

/// <summary>The public parameter surface of each cmdlet is the contract: any drift must be deliberate (dbatools style).</summary>
public static class ModuleCommands
{
    public static readonly Dictionary<string, string[]> Parameters = new(StringComparer.Ordinal)
    {
        ["ConvertFrom-SleapSessionString"] = new[] { "SessionString" },
        ["ConvertTo-SleapSessionString"] = new[] { "RoomId", "Token", "PeerId", "Server" },
        ["Get-SleapSignalingServer"] = new[] { "Port" },
        ["New-SleapRoom"] = new[] { "Server", "Name", "ExpiresIn", "WhatIf", "Confirm" },
        ["Remove-SleapRoom"] = new[] { "RoomId", "Token", "Server", "WhatIf", "Confirm" },
        ["Start-SleapSignalingServer"] = new[] { "Port", "ListenAddress", "DatabasePath", "JobRetentionDays", "MaxFinishedJobsPerRoom", "Redis", "DrainTimeoutSec", "TurnUrl", "TurnSecret", "Wait" },
        ["Stop-SleapSignalingServer"] = new[] { "InputObject", "Port", "DrainTimeoutSec", "PassThru", "WhatIf", "Confirm" },
        ["Start-SleapWorker"] = new[] { "Server", "RoomId", "Token", "Name", "GpuId", "WorkingDirectory", "NvidiaSmiPath", "SleapNnPath", "Tag", "TrainerPriority", "MaxPackageRatio", "MaxUnpackedSize", "DataRoot", "ResultRetention", "PartialUploadRetention", "ResultQuotaGB", "Space", "ModelPath", "RequestTimeoutSec", "RequireChannelAuth", "Wait" },
        ["Stop-SleapWorker"] = new[] { "PeerId", "PassThru", "WhatIf", "Confirm" },
        ["Get-SleapWorker"] = new[] { "RoomId", "Token", "SessionString", "Server", "MinGpuMemoryMB", "Status", "Tag", "Local" },
        ["Select-SleapWorker"] = new[] { "InputObject", "RoomId", "Token", "SessionString", "Server", "MinGpuMemoryMB", "Auto", "WorkerId" },
        ["Show-SleapMonitor"] = new[] { "RoomId", "Token", "Server", "NoBrowser", "PassThru" },
        ["Get-SleapSpace"] = new[] { "Name", "RoomId", "Token", "SessionString", "Server" },
        ["Submit-SleapInference"] = new[] { "ModelPath", "DataPath", "Space", "Worker", "SessionString", "RoomId", "Token", "Server", "WorkerId", "AutoSelect", "MinGpuMemoryMB", "OutputPath", "Frames", "OnlySuggestedFrames", "BatchSize", "PeakThreshold", "ShowLog", "AsJob",
            "Queue", "Priority", "Tag" },
        ["Submit-SleapTraining"] = new[] { "PackagePath", "WorkerPackagePath", "Worker", "SessionString", "RoomId", "Token", "Server", "WorkerId", "AutoSelect", "MinGpuMemoryMB", "OutputPath", "ShowLog", "AsJob",
            "Queue", "Priority", "Tag", "NoWait", "MaxEpochs", "BatchSize", "LearningRate", "RunName", "ResumeFrom" },
        ["Get-SleapJob"] = new[] { "JobId", "State", "RoomId", "Token", "SessionString", "Server" },
        ["Wait-SleapJob"] = new[] { "JobId", "Timeout", "RoomId", "Token", "SessionString", "Server" },
        ["Stop-SleapJob"] = new[] { "JobId", "KeepCheckpoint", "PassThru", "RoomId", "Token", "SessionString", "Server", "WhatIf", "Confirm" },
        ["Receive-SleapJob"] = new[] { "JobId", "OutputPath", "RoomId", "Token", "SessionString", "Server" },
        ["Test-SleapConnection"] = new[] { "Worker", "RoomId", "Token", "SessionString", "Server", "WorkerId", "Quiet" },
    };

    /// <summary>Commands that write nothing on success (so they declare no output type).</summary>
    public static readonly HashSet<string> WithoutOutput = new(StringComparer.Ordinal) { "Remove-SleapRoom" };

    public static List<string> All => Parameters.Keys.OrderBy(n => n, StringComparer.Ordinal).ToList();

    public static IEnumerable<object[]> Names => All.Select(n => new object[] { n });
}

public sealed class ParameterContractTests : IClassFixture<SharedSession>
{
    private readonly HostedPowerShell _ps;
    public ParameterContractTests(SharedSession session) => _ps = session.PowerShell;

    [Theory]
    [MemberData(nameof(ModuleCommands.Names), MemberType = typeof(ModuleCommands))]
    public void Cmdlet_has_exactly_the_contracted_parameters(string command)
    {
        var actual = _ps.Run($$"""
            $common = [System.Management.Automation.PSCmdlet]::CommonParameters
            (Get-Command {{command}}).Parameters.Keys | Where-Object { $common -notcontains $_ }
            """).ThrowOnError().Output.Select(o => o.ToString()).OrderBy(n => n, StringComparer.Ordinal);
        var expected = ModuleCommands.Parameters[command].OrderBy(n => n, StringComparer.Ordinal);
        Assert.Equal(expected, actual);
    }

    /// <summary>
    /// The room and worker parameters mean the same on every cmdlet, so they complete and take values alike: -Server a
    /// list of instances (-Server a,b), -RoomId and -WorkerId the ids this session knows. Copies of a declaration used to
    /// drift apart (Test-SleapConnection -Server a,b bound as "a b").
    /// </summary>
    [Theory]
    [MemberData(nameof(ModuleCommands.Names), MemberType = typeof(ModuleCommands))]
    public void Room_and_worker_parameters_complete_and_bind_alike(string command)
    {
        var attributes = _ps.Run($$"""
            $parameters = (Get-Command {{command}}).Parameters
            foreach ($name in 'Server', 'RoomId', 'WorkerId') {
                if (-not $parameters.ContainsKey($name)) { continue }
                $parameters[$name].Attributes | ForEach-Object {
                    if ($_ -is [System.Management.Automation.ArgumentCompleterAttribute]) { "$name completer $($_.Type.Name)" }
                    elseif ($_ -is [System.Management.Automation.ArgumentTransformationAttribute]) { "$name transform $($_.GetType().Name)" }
                }
            }
            """).ThrowOnError().Output.Select(o => o.ToString()).ToList();
        var declared = ModuleCommands.Parameters[command];
        var expected = new List<string>();
        if (declared.Contains("Server")) expected.AddRange(new[] { "Server completer ServerCompleter", "Server transform ServerListAttribute" });
        if (declared.Contains("RoomId")) expected.Add("RoomId completer RoomIdCompleter");
        if (declared.Contains("WorkerId")) expected.Add("WorkerId completer WorkerIdCompleter");
        Assert.Equal(expected.OrderBy(a => a, StringComparer.Ordinal), attributes.OrderBy(a => a, StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(ModuleCommands.Names), MemberType = typeof(ModuleCommands))]
    public void Cmdlet_declares_its_output_type(string command)
    {
        if (ModuleCommands.WithoutOutput.Contains(command)) return;
        var outputTypes = _ps.Run($"(Get-Command {command}).OutputType | ForEach-Object {{ $_.Name }}").ThrowOnError().Output;
        Assert.NotEmpty(outputTypes);
    }
}

/// <summary>One imported session shared by read-only tests (help, contracts) to keep the suite fast.</summary>
public sealed class SharedSession : IDisposable
{
    public HostedPowerShell PowerShell { get; } = new();
    public void Dispose() => PowerShell.Dispose();
}

public sealed class ShouldProcessContractTests : IClassFixture<SharedSession>
{
    private readonly HostedPowerShell _ps;
    public ShouldProcessContractTests(SharedSession session) => _ps = session.PowerShell;

    [Theory]
    [InlineData("Remove-SleapRoom")]
    [InlineData("Stop-SleapSignalingServer")]
    [InlineData("Stop-SleapWorker")]
    [InlineData("Stop-SleapJob")]
    public void Commands_that_delete_or_stop_support_WhatIf_and_Confirm(string command)
    {
        var supports = _ps.Run($"$c = Get-Command {command}; $c.Parameters.ContainsKey('WhatIf') -and $c.Parameters.ContainsKey('Confirm')").Single<bool>();
        Assert.True(supports);
    }

    [Fact]
    public void Remove_SleapRoom_disconnects_a_whole_room_so_it_confirms_by_default()
    {
        var impact = _ps.Run("(Get-Command Remove-SleapRoom).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0].ConfirmImpact.ToString()").Single<string>();
        Assert.Equal("High", impact);
    }
}
