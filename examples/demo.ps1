#Requires -Version 7.4
<#
.SYNOPSIS
    SleapRtc in one minute: an embedded signaling server, two workers, a sample training package,
    one submission, and the trained models it returns.

.DESCRIPTION
    Run from a clone after building (dotnet build SleapRtc.sln):

        pwsh ./examples/demo.ps1

    Everything runs on this machine. Without -SleapNnPath the workers use the stand-in trainer in
    tests/fixtures (prints like `sleap-nn train`, writes a checkpoint), and report the GPUs of a recorded
    nvidia-smi, so no GPU or SLEAP installation is needed. Pass -SleapNnPath to train for real.

.PARAMETER SleapNnPath
    A real sleap-nn executable. Default: the stand-in trainer.

.PARAMETER OutputPath
    Where the returned models are extracted. Default: a folder under the temp directory.

.EXAMPLE
    pwsh ./examples/demo.ps1 -OutputPath ./demo-models
#>
[CmdletBinding()]
param(
    [string] $SleapNnPath,
    [string] $OutputPath = (Join-Path ([IO.Path]::GetTempPath()) 'sleaprtc-demo-models')
)

$ErrorActionPreference = 'Stop'
$repo = Split-Path -Parent $PSScriptRoot
Import-Module (Join-Path $repo 'SleapRtc.psd1') -Force

$fixtures = Join-Path $repo 'tests/fixtures'
$nvidiaSmi = Join-Path $fixtures 'nvidia-smi'
if (-not $SleapNnPath) {
    $SleapNnPath = Join-Path $fixtures 'sleap-nn'
    $env:SLEAP_NN_STANDIN_EPOCH_SECONDS = '0.3'   # a visible but quick training run
}

$work = Join-Path ([IO.Path]::GetTempPath()) "sleaprtc-demo-$PID"
New-Item -ItemType Directory -Force -Path $work | Out-Null
$workers = @()
try {
    Write-Host '== 1. First worker: no server given, so an embedded server and a new room are created' -ForegroundColor Cyan
    $first = Start-SleapWorker -Name 'demo-a' -GpuId 0 -NvidiaSmiPath $nvidiaSmi -SleapNnPath $SleapNnPath -InformationAction Continue
    $workers += $first

    Write-Host '== 2. Second worker joins the same room with the printed credentials' -ForegroundColor Cyan
    $workers += Start-SleapWorker -Server $first.Server -RoomId $first.RoomId -Token $first.Token -Name 'demo-b' -GpuId 1 `
        -NvidiaSmiPath $nvidiaSmi -SleapNnPath $SleapNnPath

    Write-Host '== 3. The room, as a client sees it' -ForegroundColor Cyan
    # The default view: short peer ids (the full one is on the object), fits an 80-column terminal.
    Get-SleapWorker -RoomId $first.RoomId | Out-Host

    Write-Host '== 4. A sample training package (shaped like a SLEAP export)' -ForegroundColor Cyan
    $packageDir = Join-Path $work 'labels.v001'
    New-Item -ItemType Directory -Force -Path $packageDir | Out-Null
    Set-Content -Path (Join-Path $packageDir 'train-script.sh') -Value @(
        '#!/bin/bash'
        'sleap-nn train --config-name centroid.json --config-dir .'
        'sleap-nn train --config-name centered_instance.json --config-dir .'
    )
    Set-Content -Path (Join-Path $packageDir 'centroid.json') -Value '{"trainer_config": {"max_epochs": 5}}'
    Set-Content -Path (Join-Path $packageDir 'centered_instance.json') -Value '{"trainer_config": {"max_epochs": 5}}'
    [IO.File]::WriteAllBytes((Join-Path $packageDir 'labels.v001.pkg.slp'), [byte[]]::new(1MB))
    $package = Join-Path $work 'labels.v001.zip'
    [IO.Compression.ZipFile]::CreateFromDirectory($packageDir, $package, 'Optimal', $true)

    Write-Host '== 5. Submit to the worker with the most GPU memory and wait for the models' -ForegroundColor Cyan
    $result = Get-SleapWorker -RoomId $first.RoomId |
        Sort-Object GpuMemoryMB -Descending |
        Select-Object -First 1 |
        Submit-SleapTraining -PackagePath $package -OutputPath $OutputPath
    $result | Format-List JobId, WorkerId, Status, Configs, Duration, OutputPath, ModelPaths

    Write-Host '== 6. The returned models' -ForegroundColor Cyan
    Get-ChildItem -Path $OutputPath -Recurse -File | Format-Table FullName, Length
}
finally {
    $workers | Stop-SleapWorker
    Get-SleapSignalingServer | Stop-SleapSignalingServer
    Remove-Item -Recurse -Force -Path $work -ErrorAction SilentlyContinue
}
