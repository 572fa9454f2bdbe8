#!/usr/bin/env bash
# The README's fully supervised table: Mask R-CNN (ResNet-18 FPN, 96 px) and a U-Net trained on the
# same synthetic instance scenes, scored on the test split: COCO mask / box AP (pycocotools'
# protocol, `sightline eval --coco`) and semantic mIoU (`sightline instance --semantic` for Mask
# R-CNN). Usage: bash bench/proof_instance_ap.sh [OUT] (about 30 min on 2 cores).
set -euo pipefail
S=$(cd "$(dirname "$0")/.." && pwd)/build/sightline
out=${1:-proof-instance}
mkdir -p "$out" && cd "$out"
$S data synth --out inst --multi --instances --n 160 --size 96 --seed 7 --force
# torchvision's recipe with its proposal and sampler counts lowered for 96 px images holding 1-3
# objects (docs/mask-rcnn.md, Training): 2.4x faster steps.
$S train instance --data inst --val val_matched --out mrcnn --depth 18 --min-size 96 --max-size 96 \
  --epochs 12 --lr-steps 8,11 --batch 2 --lr 0.01 --rpn-pre-nms-top-n-train 600 --rpn-post-nms-top-n-train 300 \
  --rpn-pre-nms-top-n-test 600 --rpn-post-nms-top-n-test 300 --box-batch-size-per-image 128 --threads 2
$S instance --model mrcnn/best.pth --coco inst/annotations/instances_test.json --input inst/JPEGImages \
  --out pred --semantic pred_sem
$S eval --coco inst/annotations/instances_test.json --results pred/results.json --iou-type segm,bbox --out coco_eval
$S eval --pred pred_sem --gt inst --split test --out mrcnn_semantic
# The U-Net on the same images and masks: the same 12 epochs (half a minute), then 100 epochs (a quarter of
# Mask R-CNN's training time).
mkdir -p test_images
while read -r id; do cp "inst/JPEGImages/$id.png" test_images/; done < inst/ImageSets/Segmentation/test.txt
for epochs in 12 100; do
  $S train segment --data inst --val val_matched --out unet$epochs --epochs $epochs --batch 8 --threads 2
  $S segment --model unet$epochs/best.pt --input test_images --out unet${epochs}_pred --no-overlay
  $S eval --pred unet${epochs}_pred --gt inst --split test --out unet${epochs}_semantic
done
