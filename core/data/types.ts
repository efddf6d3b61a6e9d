/** In-memory image sets in the CIFAR binary layout, and the batches training consumes. */

export const IMAGE_SIDE = 32;
export const IMAGE_CHANNELS = 3;
/** Bytes of one image: 1024 red, 1024 green, 1024 blue (row-major 32x32 planes). */
export const IMAGE_BYTES = IMAGE_SIDE * IMAGE_SIDE * IMAGE_CHANNELS;

export interface ImageSet {
  count: number;
  /** count * IMAGE_BYTES bytes, each image in CIFAR planar layout (R plane, G plane, B plane). */
  images: Uint8Array;
  /** count labels (fine labels for CIFAR-100). */
  labels: Uint8Array;
  numClasses: number;
  /** count coarse labels where the source has them (CIFAR-100's 20 superclasses). */
  coarseLabels?: Uint8Array;
}

/** A set's labels without its images: what partitions, fractions and statistics read. */
export type LabelSet = Omit<ImageSet, 'images'>;

/** One batch ready for the model: NHWC float32 images, normalised; int32 labels. */
export interface Batch {
  size: number;
  /** size * 32 * 32 * 3 floats, NHWC. */
  x: Float32Array;
  y: Int32Array;
}

export interface TrainTestSets {
  train: ImageSet;
  test: ImageSet;
  classNames: string[];
  /** Names of the coarse labels where the source has them. */
  coarseNames?: string[];
}
