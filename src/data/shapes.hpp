// Object silhouettes of the synth classes, drawn as filled polygons. Each class has its own
// outline (a hull with a sail or cabin, a long carriage on wheels, a cross-shaped plane seen
// from above, a car body with cabin and wheels, a four-legged cow, a fish with tail and fins)
// so a small CNN can tell the classes apart from the object alone.
#pragma once

#include <vector>

#include <opencv2/core.hpp>

#include "sightline/data.hpp"

namespace sightline::detail {

// Tones of an object's parts: the body, a second colour, light details (windows, sails),
// dark details (wheels, eyes).
enum Tone : int { kBody = 0, kSecond = 1, kLight = 2, kDark = 3 };

struct ObjectPart {
    std::vector<cv::Point2f> polygon;  // unit coordinates: length along x is about 1, y down
    Tone tone;
};

// The parts of one object of class `cls` (1..6), with shape variations drawn from rng,
// centred on the bounding box of all parts.
std::vector<ObjectPart> object_parts(int cls, Rng& rng);

// Where and how an object sits in the image.
struct ObjectPose {
    cv::Point2f centre;   // pixels
    float length = 1;     // pixels per unit
    float angle = 0;      // radians, counter-clockwise on screen
    float aspect = 1;     // y stretch
    bool flip = false;    // mirror left-right
};

// The pixel bounding box of the parts under the pose (centre included).
cv::Rect2f object_bounds(const std::vector<ObjectPart>& parts, const ObjectPose& pose);

// The drawn object: mask (CV_8U, 255 inside, exactly the pixels the object covers) and its
// colours (CV_8UC3 RGB, meaningful inside the mask), both of the image size.
struct ObjectLayer {
    cv::Mat mask;
    cv::Mat rgb;
};
ObjectLayer draw_object(const std::vector<ObjectPart>& parts, const ObjectPose& pose, cv::Size size,
                        Rng& rng);

}  // namespace sightline::detail
